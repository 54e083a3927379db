"""Connecting to Redis: the one place Redis clients are made, each with a named profile
of timeouts and retries; the configured server, or the embedded one when none is."""

from __future__ import annotations

from dataclasses import dataclass

import redis
import redis.asyncio as aioredis
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.retry import Retry
from redis.backoff import AbstractBackoff, ExponentialWithJitterBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from arqd.core.settings import Settings
from arqd.store.packing import HiredisPacking


@dataclass(frozen=True, slots=True)
class Profile:
    """How a client waits on Redis. Seconds throughout."""

    name: str
    socket_timeout: float  # longer than any blocking read the client issues
    connect_timeout: float
    pool_wait: float  # how long a caller waits for a free connection
    max_connections: int
    retries: int  # resends after a connection error (a timeout is never resent)
    backoff: AbstractBackoff


# Workers and Python producers: patient, since a blocking read lasts up to BLOCK_CAP
# (2 s) and a Redis restart is waited out, not reported.
WORKER = Profile("worker", 15.0, 5.0, 30.0, 200, 3, ExponentialWithJitterBackoff(0.05, 1.0))
# HTTP requests fail fast: a request waiting on a Redis that is gone helps nobody, so the
# API answers 503 at once. One resend without delay replaces a pooled connection that
# died while Redis restarted.
REQUESTS = Profile("requests", 3.0, 1.0, 2.0, 256, 1, NoBackoff())
# Live feeds: each blocking read (at most 1 s) holds a connection, so they get a pool of
# their own, one connection per connected WebSocket client at most.
FEEDS = Profile("feeds", 3.0, 1.0, 2.0, 10_000, 1, NoBackoff())


class _PackedConnection(HiredisPacking, Connection):
    pass


class _PackedSSLConnection(HiredisPacking, SSLConnection):
    pass


class _PackedUnixConnection(HiredisPacking, UnixDomainSocketConnection):
    pass


_PACKED: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: _PackedConnection,
    SSLConnection: _PackedSSLConnection,
    UnixDomainSocketConnection: _PackedUnixConnection,
}


def resolve_url(settings: Settings) -> str:
    """REDIS_URL, or the URL of the embedded server for ARQD_DATA_DIR (started if needed)."""
    if settings.redis_url:
        return settings.redis_url
    from arqd.store.embedded import EmbeddedServer

    return EmbeddedServer(settings.data_dir).ensure_running()


def connect(
    url: str, profile: Profile = WORKER, client: type[aioredis.Redis] = aioredis.Redis
) -> aioredis.Redis:
    """An asyncio Redis client (``redis://``, ``rediss://`` or ``unix://``); replies stay
    bytes (payloads go straight to orjson). With every connection busy, a caller waits
    ``profile.pool_wait`` for one, then gets a ConnectionError (redis-py's default pool
    fails at once). ``client`` may be a subclass, ``PipelinedRedis`` say."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=profile.max_connections,
        timeout=profile.pool_wait,
        decode_responses=False,
        socket_connect_timeout=profile.connect_timeout,
        socket_timeout=profile.socket_timeout,
        retry=Retry(profile.backoff, profile.retries),
        retry_on_error=[RedisConnectionError],
    )
    pool.connection_class = _PACKED.get(pool.connection_class, pool.connection_class)
    return client.from_pool(pool)  # the client owns the pool: aclose() closes it


def connect_sync(url: str) -> redis.Redis:
    """A blocking Redis client with the worker profile's timeouts (redis-py packs its
    commands with hiredis already)."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=WORKER.connect_timeout,
        socket_timeout=WORKER.socket_timeout,
        retry_on_error=[RedisConnectionError],
    )
