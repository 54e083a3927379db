"""The worker's one door into the store: every store call and store type the worker uses.

The store's interface is being regrouped; the worker follows it by editing this module only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from arqd.core.settings import Settings
from arqd.resilience.breaker import BreakerPolicy
from arqd.resilience.circuit import CircuitBreaker
from arqd.store.codec import Answer, Lease, error_json, new_task_id
from arqd.store.connection import connect, resolve_url
from arqd.store.store import Limit, Store
from arqd.store.wakeup import WakeWait

__all__ = [
    "Answer",
    "Dequeued",
    "Lease",
    "Limit",
    "Store",
    "WakeWait",
    "WorkerStore",
    "error_json",
    "new_task_id",
    "open_store",
    "resolve_url",
]

Dequeued = tuple[int, int, list[Lease]]  # ms until the next due time or -1, deferred, leases


def open_store(url: str, settings: Settings) -> Store:
    """A store on a connection pool of its own (worker reads block for seconds)."""
    return Store(connect(url), settings)


class WorkerStore:
    """What one worker asks of the store, under the worker's id."""

    def __init__(self, store: Store, worker_id: str, limits: Sequence[Limit]) -> None:
        self.store = store
        self.worker_id = worker_id
        self.limits = list(limits)

    @property
    def settings(self) -> Settings:
        return self.store.settings

    async def dequeue(self, queue: str, count: int) -> Dequeued:
        return await self.store.dequeue(queue, count, self.worker_id, self.limits)

    def wake_wait(self) -> WakeWait:
        return self.store.wake_wait()

    async def wait_and_dequeue(
        self, wait: WakeWait, queues: Sequence[str], block: float, counts: Sequence[int]
    ) -> list[Dequeued]:
        return await self.store.wait_and_dequeue(
            wait, queues, block, counts, self.worker_id, self.limits
        )

    async def finish(self, queue: str, answers: Sequence[Answer]) -> list[bool]:
        return await self.store.finish(queue, answers)

    async def heartbeat(self, queue: str, leases: Sequence[Lease]) -> tuple[set[str], set[str]]:
        return await self.store.heartbeat(queue, leases)

    async def register(self, details: dict[str, Any]) -> None:
        await self.store.register_worker(self.worker_id, details)

    async def remove(self) -> None:
        await self.store.remove_worker(self.worker_id)

    def breaker(
        self, name: str, policy: BreakerPolicy | None, loop: asyncio.AbstractEventLoop
    ) -> CircuitBreaker:
        return CircuitBreaker(name, self.store, policy, loop)
