"""Connecting to Redis: the one place Redis clients are made, each with a named profile
of timeouts and retries; the configured server or Sentinel-watched master (``topology``),
or the embedded server when none is configured."""

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
from redis.asyncio.sentinel import (
    Sentinel,
    SentinelConnectionPool,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)
from redis.backoff import AbstractBackoff, ExponentialWithJitterBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from arqd.core.settings import Settings
from arqd.store.packing import HiredisPacking
from arqd.store.topology import SentinelTarget, sentinel_target


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


class _PackedSentinelConnection(HiredisPacking, SentinelManagedConnection):
    pass


class _PackedSentinelSSLConnection(HiredisPacking, SentinelManagedSSLConnection):
    pass


_PACKED: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: _PackedConnection,
    SSLConnection: _PackedSSLConnection,
    UnixDomainSocketConnection: _PackedUnixConnection,
}


class _SentinelBlockingPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """Connections to the master the sentinels name (found again after a failover: a
    connection to a demoted master turns its READONLY answers into a ConnectionError and
    reconnects), handed out as ``BlockingConnectionPool`` does: a caller waits for one."""

    async def disconnect(self, inuse_connections: bool = True) -> None:
        """Close the connections; a full close (the client's) closes the connections to
        the sentinels too (a change of master closes only idle ones, and keeps those)."""
        await super().disconnect(inuse_connections)
        if inuse_connections:
            for sentinel in self.sentinel_manager.sentinels:
                await sentinel.aclose()


def resolve_url(settings: Settings) -> str:
    """REDIS_URL, or the URL of the embedded server for ARQD_DATA_DIR (started if needed)."""
    if settings.redis_url:
        return settings.redis_url
    from arqd.store.embedded import EmbeddedServer

    return EmbeddedServer(settings.data_dir).ensure_running()


def connect(
    url: str, profile: Profile = WORKER, client: type[aioredis.Redis] = aioredis.Redis
) -> aioredis.Redis:
    """An asyncio Redis client for ``url`` (see ``topology``); replies stay bytes
    (payloads go straight to orjson). With every connection busy, a caller waits
    ``profile.pool_wait`` for one, then gets a ConnectionError (redis-py's default pool
    fails at once). ``client`` may be a subclass, ``PipelinedRedis`` say."""
    options = {
        "max_connections": profile.max_connections,
        "timeout": profile.pool_wait,
        "decode_responses": False,
        "socket_connect_timeout": profile.connect_timeout,
        "socket_timeout": profile.socket_timeout,
        "retry": Retry(profile.backoff, profile.retries),
        "retry_on_error": [RedisConnectionError],
    }
    target = sentinel_target(url)
    if target is not None:
        pool: aioredis.ConnectionPool = _sentinel_pool(target, profile, options)
    else:
        pool = aioredis.BlockingConnectionPool.from_url(url, **options)
        pool.connection_class = _PACKED.get(pool.connection_class, pool.connection_class)
    return client.from_pool(pool)  # the client owns the pool: aclose() closes it


def _sentinel_pool(
    target: SentinelTarget, profile: Profile, options: dict[str, object]
) -> _SentinelBlockingPool:
    sentinels = Sentinel(  # type: ignore[no-untyped-call]
        list(target.sentinels), sentinel_kwargs=_sentinel_login(target, profile)
    )
    packed = _PackedSentinelSSLConnection if target.tls else _PackedSentinelConnection
    return _SentinelBlockingPool(  # type: ignore[no-untyped-call]
        target.service,
        sentinels,
        connection_class=packed,
        db=target.db,
        username=target.username,
        password=target.password,
        **options,
    )


def _sentinel_login(target: SentinelTarget, profile: Profile) -> dict[str, object]:
    """How to reach and log in to the sentinels themselves (they answer at once)."""
    return {
        "socket_connect_timeout": profile.connect_timeout,
        "socket_timeout": profile.connect_timeout,
        "username": target.sentinel_username,
        "password": target.sentinel_password,
    }


def connect_sync(url: str) -> redis.Redis:
    """A blocking Redis client with the worker profile's timeouts (redis-py packs its
    commands with hiredis already)."""
    options = {
        "socket_connect_timeout": WORKER.connect_timeout,
        "socket_timeout": WORKER.socket_timeout,
        "retry_on_error": [RedisConnectionError],
    }
    target = sentinel_target(url)
    if target is None:
        return redis.Redis.from_url(url, **options)
    from redis.sentinel import Sentinel as BlockingSentinel

    sentinels = BlockingSentinel(  # type: ignore[no-untyped-call]
        list(target.sentinels), sentinel_kwargs=_sentinel_login(target, WORKER)
    )
    master: redis.Redis = sentinels.master_for(  # type: ignore[no-untyped-call]
        target.service,
        db=target.db,
        username=target.username,
        password=target.password,
        ssl=target.tls,
        **options,
    )
    return master
