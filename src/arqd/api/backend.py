"""The API's Redis client: short timeouts and no backoff, so requests fail fast.

A request waiting on a Redis that is gone helps nobody: the API answers 503 at once and
the caller retries. Connection refused fails immediately; a Redis that hangs costs at most
the socket timeout. One retry without delay replaces a pooled connection that died while
Redis restarted, so the first request after a restart does not fail needlessly.

Commands are packed by hiredis (C) rather than by redis-py's Python encoder, which was most
of the API's CPU time for batch enqueues: a 1000-task script call has about 10,000 arguments.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import DataError

from arqd.client import Client
from arqd.core.settings import Settings
from arqd.store.store import Store

SOCKET_TIMEOUT = 3.0  # seconds; above the WebSocket feed's 1 s blocking reads
CONNECT_TIMEOUT = 1.0
POOL_WAIT = 2.0  # seconds a request waits for a free connection
REQUEST_CONNECTIONS = 256
FEED_CONNECTIONS = 10_000  # one per connected WebSocket client, at most


def _pack(args: tuple[Any, ...]) -> bytes:
    """One command, as redis-py's own hiredis serializer (sync client) packs it."""
    # redis-py passes multi-word commands as one argument ("SCRIPT LOAD"); split them.
    if isinstance(args[0], str):
        args = tuple(args[0].encode().split()) + args[1:]
    elif b" " in args[0]:
        args = tuple(args[0].split()) + args[1:]
    try:
        return bytes(hiredis.pack_command(args))
    except TypeError:
        pass  # hiredis takes str, bytes, int and float; redis-py also takes these two:
    args = tuple(bytes(a) if isinstance(a, bytearray | memoryview) else a for a in args)
    try:
        return bytes(hiredis.pack_command(args))
    except TypeError as exc:
        raise DataError(str(exc)) from exc


class _HiredisPacking:
    """Byte-for-byte what redis-py's Python encoder produces, in C."""

    def pack_command(self, *args: Any) -> list[bytes]:
        return [_pack(args)]

    def pack_commands(self, commands: Iterable[Iterable[Any]]) -> list[bytes]:
        return [b"".join(_pack(tuple(args)) for args in commands)]


class _PackedConnection(_HiredisPacking, Connection):
    pass


class _PackedSSLConnection(_HiredisPacking, SSLConnection):
    pass


class _PackedUnixConnection(_HiredisPacking, UnixDomainSocketConnection):
    pass


_PACKED: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: _PackedConnection,
    SSLConnection: _PackedSSLConnection,
    UnixDomainSocketConnection: _PackedUnixConnection,
}


def api_redis(url: str, max_connections: int = REQUEST_CONNECTIONS) -> aioredis.Redis:
    """A Redis client for the API (``redis://``, ``rediss://`` or ``unix://`` URLs).

    With every connection busy, a caller waits up to POOL_WAIT seconds for one, then gets
    a ConnectionError: a 503 for an HTTP request, as when Redis is down."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=POOL_WAIT,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=CONNECT_TIMEOUT,
        retry=Retry(NoBackoff(), 1),
    )
    pool.connection_class = _PACKED.get(pool.connection_class, pool.connection_class)
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes it


def api_client(settings: Settings, url: str) -> Client:
    """A client for request handlers, on its own connection pool."""
    return Client(Store(api_redis(url), settings))


def feed_store(settings: Settings, url: str) -> Store:
    """A store for the WebSocket feeds: each blocking read holds a connection, so they get
    a pool of their own and cannot starve the request handlers of connections."""
    return Store(api_redis(url, FEED_CONNECTIONS), settings)
