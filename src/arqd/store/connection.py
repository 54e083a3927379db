"""Connecting to Redis: the one place Redis clients are made, each with a named profile
of timeouts and retries; the configured server, Sentinel-watched master or Redis Cluster
(``topology``), or the embedded server when none is configured."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode
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
from redis.exceptions import RedisClusterException, SlotNotCoveredError
from redis.exceptions import TimeoutError as RedisTimeoutError

from arqd.core.settings import Settings
from arqd.store.packing import HiredisPacking
from arqd.store.topology import ClusterTarget, SentinelTarget, cluster_target, sentinel_target

# A client that sends each command to the server holding its keys: one server's client, or
# redis-py's cluster client (see ``nodes`` for the store's own routing of scripts).
RedisClient = aioredis.Redis | aioredis.RedisCluster


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


def connect(url: str, profile: Profile = WORKER) -> RedisClient:
    """An asyncio Redis client for ``url`` (see ``topology``): a cluster's client for a
    cluster, else ``connect_server``'s."""
    target = cluster_target(url)
    if target is not None:
        return _cluster(target, profile)
    return connect_server(url, profile)


def connect_server(
    url: str, profile: Profile = WORKER, client: type[aioredis.Redis] = aioredis.Redis
) -> aioredis.Redis:
    """An asyncio client for one server's URL or a Sentinel URL; replies stay bytes
    (payloads go straight to orjson). With every connection busy, a caller waits
    ``profile.pool_wait`` for one, then gets a ConnectionError (redis-py's default pool
    fails at once). ``client`` may be a subclass, ``PipelinedRedis`` say."""
    options = _options(profile)
    target = sentinel_target(url)
    if target is not None:
        pool: aioredis.ConnectionPool = _sentinel_pool(target, profile, options)
    else:
        pool = aioredis.BlockingConnectionPool.from_url(url, **options)
        pool.connection_class = _PACKED.get(pool.connection_class, pool.connection_class)
    return client.from_pool(pool)  # the client owns the pool: aclose() closes it


def _options(profile: Profile) -> dict[str, Any]:
    return {
        "max_connections": profile.max_connections,
        "timeout": profile.pool_wait,
        "decode_responses": False,
        "socket_connect_timeout": profile.connect_timeout,
        "socket_timeout": profile.socket_timeout,
        "retry": Retry(profile.backoff, profile.retries),
        "retry_on_error": [RedisConnectionError],
    }


class _Cluster(aioredis.RedisCluster):
    """redis-py's cluster client, knowing the profile its nodes' own clients get. A
    cluster it cannot reach, or a slot no master serves yet (a failover under way), is
    a ConnectionError, as one server that does not answer is: callers wait, retry or
    answer 503 alike."""

    profile: Profile = WORKER

    async def initialize(self, *args: Any, **kwargs: Any) -> _Cluster:
        try:
            await super().initialize(*args, **kwargs)
        except RedisClusterException as exc:
            raise as_unreachable(exc) from exc
        return self

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().execute_command(*args, **kwargs)
        except RedisClusterException as exc:
            raise as_unreachable(exc) from exc


def as_unreachable(exc: RedisClusterException) -> Exception:
    """A ConnectionError for a cluster that cannot be reached or serve a slot now; any
    other cluster error (a command spanning slots, say) as it is."""
    if isinstance(exc, SlotNotCoveredError) or isinstance(
        exc.__cause__, RedisConnectionError | RedisTimeoutError | OSError
    ):
        return RedisConnectionError(str(exc))
    return exc


def _cluster(target: ClusterTarget, profile: Profile) -> _Cluster:
    cluster = _Cluster(
        startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
        username=target.username,
        password=target.password,
        ssl=target.tls,
        decode_responses=False,
        socket_connect_timeout=profile.connect_timeout,
        socket_timeout=profile.socket_timeout,
        max_connections=profile.max_connections,
        retry=Retry(profile.backoff, max(profile.retries, 3)),
    )
    cluster.profile = profile
    return cluster


def profile_of(client: RedisClient) -> Profile:
    """The profile a cluster client was made with (the worker's for any other client)."""
    return client.profile if isinstance(client, _Cluster) else WORKER


def node_client(cluster: aioredis.RedisCluster, node: ClusterNode) -> aioredis.Redis:
    """A client of its own for one master of ``cluster`` (its shared connection and its
    blocking waits), set up as the cluster client sets up its connections."""
    profile = profile_of(cluster)
    kwargs = {k: v for k, v in node.connection_kwargs.items() if k != "retry"}
    kwargs.update(_options(profile))
    pool = aioredis.BlockingConnectionPool(
        connection_class=_PACKED.get(node.connection_class, node.connection_class), **kwargs
    )
    return aioredis.Redis.from_pool(pool)


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


def connect_sync(url: str) -> redis.Redis | redis.RedisCluster:
    """A blocking Redis client with the worker profile's timeouts (redis-py packs its
    commands with hiredis already): a cluster's client for a cluster URL."""
    options = {
        "socket_connect_timeout": WORKER.connect_timeout,
        "socket_timeout": WORKER.socket_timeout,
        "retry_on_error": [RedisConnectionError],
    }
    cluster = cluster_target(url)
    if cluster is not None:
        from redis.cluster import ClusterNode as BlockingClusterNode

        return redis.RedisCluster(
            startup_nodes=[
                BlockingClusterNode(host, port)  # type: ignore[no-untyped-call]
                for host, port in cluster.nodes
            ],
            username=cluster.username,
            password=cluster.password,
            ssl=cluster.tls,
            socket_connect_timeout=WORKER.connect_timeout,
            socket_timeout=WORKER.socket_timeout,
        )
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
