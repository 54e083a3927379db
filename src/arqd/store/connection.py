"""Connecting to Redis: the configured server, or the embedded one when none is."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from arqd.core.settings import Settings


def resolve_url(settings: Settings) -> str:
    """REDIS_URL, or the URL of the embedded server for ARQD_DATA_DIR (started if needed)."""
    if settings.redis_url:
        return settings.redis_url
    from arqd.store.embedded import EmbeddedServer

    return EmbeddedServer(settings.data_dir).ensure_running()


def connect(
    url: str, max_connections: int = 200, client: type[aioredis.Redis] = aioredis.Redis
) -> aioredis.Redis:
    """An asyncio Redis client; replies stay bytes (payloads go straight to orjson).

    Past ``max_connections`` busy connections a caller waits for one to free up rather
    than failing (redis-py's default pool raises instead). ``client`` may be a subclass,
    ``PipelinedRedis`` say."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=30,
        decode_responses=False,
        socket_connect_timeout=5,
        # Longer than any blocking read arqd issues (store.BLOCK_CAP), so a quiet
        # connection is never mistaken for a dead one.
        socket_timeout=15,
        # A connection the server closed (Redis restarted) is replaced and the command
        # sent again; a timeout is not retried, as the command may have run.
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 3),
        retry_on_error=[RedisConnectionError],
    )
    return client.from_pool(pool)  # the client owns the pool: aclose() closes it
