"""The worker registry: who is alive, as each worker last described itself. Not task
state, so plain commands rather than scripts."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from redis.asyncio.client import Pipeline

from arqd.store.codec import text
from arqd.store.keys import Keys
from arqd.store.nodes import Nodes


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A live worker, as it last described itself."""

    id: str
    last_seen: datetime
    details: dict[str, Any]


class Workers:
    """A worker drops out after three missed heartbeats (three lease periods)."""

    def __init__(self, nodes: Nodes, keys: Keys, lease_timeout_ms: int) -> None:
        self.nodes = nodes
        self.redis = nodes.redis
        self.keys = keys
        self.ttl_ms = 3 * lease_timeout_ms

    async def register(self, worker_id: str, details: dict[str, Any]) -> None:
        """Record that a worker is alive now."""
        now = time.time()
        pipe = await self._transaction()
        record = orjson.dumps({**details, "last_seen": now})
        pipe.set(self.keys.worker(worker_id), record, px=self.ttl_ms)
        pipe.zadd(self.keys.workers(), {worker_id: now * 1000})
        pipe.zremrangebyscore(self.keys.workers(), "-inf", now * 1000 - self.ttl_ms)
        await pipe.execute()

    async def remove(self, worker_id: str) -> None:
        pipe = await self._transaction()
        pipe.delete(self.keys.worker(worker_id))
        pipe.zrem(self.keys.workers(), worker_id)
        await pipe.execute()

    async def _transaction(self) -> Pipeline:
        """A MULTI on the registry's node (its keys share one slot)."""
        node = await self.nodes.of(self.keys.workers())
        return node.redis.pipeline(transaction=True)

    async def live(self) -> list[WorkerInfo]:
        """Each worker seen recently."""
        horizon = time.time() * 1000 - self.ttl_ms
        ids = await self.redis.zrangebyscore(self.keys.workers(), horizon, "+inf")
        if not ids:
            return []
        raws = await self.redis.mget([self.keys.worker(text(i)) for i in ids])
        live = []
        for worker_id, raw in zip(ids, raws, strict=True):
            if raw:
                details = orjson.loads(raw)
                seen = datetime.fromtimestamp(float(details["last_seen"]), UTC)
                live.append(WorkerInfo(text(worker_id), seen, details))
        return live
