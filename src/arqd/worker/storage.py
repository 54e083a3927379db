"""What one worker asks of the store, under the worker's id and with its types' limits.

Every store call the worker makes is here: the worker's parts take a ``WorkerStore`` and
never build a store call's arguments themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from arqd.core.lease import Answer, Lease
from arqd.core.schedules import Schedule
from arqd.core.settings import Settings
from arqd.resilience.breaker import BreakerPolicy
from arqd.resilience.circuit import CircuitBreaker
from arqd.store.codec import Fetched, Renewal
from arqd.store.connection import connect
from arqd.store.leases import Finished, Late, Limit
from arqd.store.schedules import DueSchedule, Poll, Tick
from arqd.store.store import Store
from arqd.store.wakeup import IdleWait


def open_store(url: str, settings: Settings) -> Store:
    """A store on a connection pool of its own (worker reads block for seconds)."""
    return Store(connect(url), settings)


class WorkerStore:
    """The store as one worker uses it."""

    def __init__(self, store: Store, worker_id: str, limits: Sequence[Limit]) -> None:
        self.store = store
        self.worker_id = worker_id
        self.limits = list(limits)

    @property
    def settings(self) -> Settings:
        return self.store.settings

    async def dequeue(self, queue: str, count: int) -> Fetched:
        return await self.store.leases.dequeue(queue, count, self.worker_id, self.limits)

    def wake_wait(self) -> IdleWait:
        return self.store.leases.wake_wait()

    async def wait_and_dequeue(
        self,
        wait: IdleWait,
        queues: Sequence[str],
        block: float,
        counts: Sequence[int],
        late: Late,
    ) -> list[Fetched]:
        return await self.store.leases.wait_and_dequeue(
            wait, queues, block, counts, self.worker_id, self.limits, late
        )

    async def finish(self, queue: str, answers: Sequence[Answer]) -> Finished:
        return await self.store.leases.finish_batch(queue, answers)

    async def relay_notices(self, queue: str, members: Sequence[str]) -> int:
        return await self.store.relay.notices(queue, members)

    async def relay_outbox(self, queue: str, workflow_id: str) -> None:
        await self.store.relay.outbox(queue, workflow_id)

    async def relay_sweep(self, queue: str) -> int:
        return await self.store.relay.sweep(queue)

    async def report(
        self,
        queue: str,
        task_id: str,
        token: bytes,
        progress: bytes | None,
        lines: Sequence[bytes],
        outcome: str | None,
    ) -> bool:
        return await self.store.reports.write(queue, task_id, token, progress, lines, outcome)

    async def heartbeat(self, queue: str, leases: Sequence[Lease]) -> Renewal:
        return await self.store.leases.heartbeat(queue, leases)

    async def upsert_schedule(self, schedule: Schedule, next_run: datetime) -> bool:
        return await self.store.schedules.upsert(schedule, next_run)

    async def poll_schedules(self, queues: Sequence[str]) -> Poll:
        return await self.store.schedules.poll(queues)

    async def fire_schedule(
        self, found: DueSchedule, ticks: Sequence[Tick], following: datetime, dropped: int
    ) -> str:
        return await self.store.schedules.fire(found, ticks, following, dropped)

    async def register(self, details: dict[str, Any]) -> None:
        await self.store.workers.register(self.worker_id, details)

    async def remove(self) -> None:
        await self.store.workers.remove(self.worker_id)

    def breaker(
        self, name: str, policy: BreakerPolicy | None, loop: asyncio.AbstractEventLoop
    ) -> CircuitBreaker:
        return CircuitBreaker(name, self.store, policy, loop)
