"""The task types the benchmark runs on an arqd worker (``arqd worker bench.tasks``).

``noop`` does nothing; ``incr`` does one Redis INCR on the key named in its payload,
through arqd's ``PipelinedRedis`` (what arqd offers handlers), and ``incr_plain`` the same
through a plain redis.asyncio pool (what the Python peers' jobs use);
``stamp`` measures enqueue-to-start latency: its payload carries ``t``, the producer's
``time.time()`` just before the enqueue call, and the handler records ``time.time() - t``
(both clocks are this machine's). Samples are buffered in the worker process and pushed
to the Redis list named by ``k`` in batches, so recording costs the worker next to nothing;
a payload with ``flush`` pushes whatever is buffered.

Only the Redis URL lookup in ``ProcessState`` is arqd's; handlers written for peer systems
can record their latencies the same way.
"""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aioredis

from arqd.core.settings import Settings
from arqd.store.connection import resolve_url
from arqd.worker import PipelinedRedis, Registry

FLUSH_EVERY = 256  # samples buffered before one RPUSH
POOL_SIZE = 50  # Redis connections a worker's handlers share; more tasks wait for one

registry = Registry()


class ProcessState:
    """What one worker process keeps between tasks: Redis clients and unsent samples."""

    def __init__(self) -> None:
        self._redis: aioredis.Redis | None = None
        self._plain: aioredis.Redis | None = None
        self._samples: dict[str, list[float]] = {}

    def redis(self) -> aioredis.Redis:
        """The handlers' auto-pipelined client, made on first use (REDIS_URL as the worker
        sees it)."""
        if self._redis is None:
            self._redis = PipelinedRedis.from_url(resolve_url(Settings.from_env()))
        return self._redis

    def plain(self) -> aioredis.Redis:
        """A plain redis.asyncio client. Its pool blocks when all connections are busy, as
        a handler's pool should: a plain pool raises "Too many connections" instead."""
        if self._plain is None:
            url = resolve_url(Settings.from_env())
            pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=POOL_SIZE)
            self._plain = aioredis.Redis(connection_pool=pool)
        return self._plain

    async def record(self, key: str, seconds: float | None, flush: bool = False) -> None:
        """Buffer one latency sample for list ``key``; push the buffer when full or asked."""
        buffer = self._samples.setdefault(key, [])
        if seconds is not None:
            buffer.append(seconds)
        if buffer and (flush or len(buffer) >= FLUSH_EVERY):
            self._samples[key] = []
            await self.redis().rpush(key, *buffer)


state = ProcessState()


@registry.task()
async def noop(payload: Any) -> None:
    """Nothing at all: the queue's own cost per task."""


@registry.task()
async def incr(payload: Any) -> None:
    """One INCR on ``payload["k"]``: the smallest job that does real I/O."""
    await state.redis().incr(payload["k"])


@registry.task()
async def incr_plain(payload: Any) -> None:
    """``incr`` through a plain redis.asyncio pool, as the Python peers' jobs do it."""
    await state.plain().incr(payload["k"])


@registry.task()
async def stamp(payload: Any) -> None:
    """Record enqueue-to-start latency (seconds) into the list ``payload["k"]``."""
    started = time.time()
    sent = payload.get("t")
    await state.record(
        payload["k"], None if sent is None else started - sent, bool(payload.get("flush"))
    )
