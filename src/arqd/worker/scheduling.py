"""Each worker runs the schedules of its queues, with no leader and no lock.

Every worker polls for due schedules (``Schedules.poll``: one call per Redis slot, at
most once a second while idle, and at each soonest next fire time), decides what a due
tick runs with the misfire policy (``core.schedules.due``, at Redis's time, so every
worker decides alike), and sends the fire. The fire script advances the next fire time
only if it still holds the tick this worker saw, and enqueues the tick's tasks in the
same step: of many workers, exactly one enqueues each tick.

The same poll says which queues hold workflow notices or outboxes: they are handed to
``relay`` (the worker's ``Relayer``), so the sweep of workflows costs no poll of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from redis.exceptions import RedisError

from arqd.core.schedules import Schedule, due, jitter_of, next_fire, tick_task_id
from arqd.store.schedules import DueSchedule, Tick
from arqd.worker.storage import WorkerStore

log = logging.getLogger("arqd.scheduler")

IDLE_POLL = 1.0  # seconds between polls with nothing due sooner
RETRY = 1.0  # seconds before polling again after Redis failed


class Scheduler:
    """Declares ``declared`` (idempotent), then fires the due schedules of ``queues``
    until ``stopping`` is set."""

    def __init__(
        self,
        store: WorkerStore,
        queues: Sequence[str],
        declared: Sequence[Schedule],
        stopping: asyncio.Event,
        relay: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.store = store
        self.relay = relay
        self.queues = list(queues)
        self.declared = [s.on(store.settings.queue) for s in declared]
        self.stopping = stopping
        self.fired = 0  # ticks this worker enqueued

    async def run(self) -> None:
        pending = list(self.declared)
        while not self.stopping.is_set():
            try:
                while pending:
                    schedule = pending[0]
                    await self.store.upsert_schedule(schedule, next_fire(schedule, _now()))
                    pending.pop(0)
                wait = await self.step()
            except (RedisError, OSError) as exc:
                log.warning("scheduler: Redis failed (%s); trying again in %.0f s", exc, RETRY)
                wait = RETRY
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), wait)

    async def step(self) -> float:
        """Fire what is due; the seconds until the next poll."""
        poll = await self.store.poll_schedules(self.queues)
        if poll.relay and self.relay is not None:
            self.relay(poll.relay)
        for found in poll.due:
            await self._fire(found, poll.now)
        wait = IDLE_POLL
        if poll.soonest is not None:
            wait = min(wait, (poll.soonest - poll.now).total_seconds())
        return max(wait, 0.001)

    async def _fire(self, found: DueSchedule, now: datetime) -> None:
        schedule = found.schedule
        decision = due(schedule, found.tick, now)
        if decision is None:
            return
        ticks = [
            Tick(tick_task_id(schedule, t), t + timedelta(seconds=jitter_of(schedule, t)))
            for t in decision.run
        ]
        outcome = await self.store.fire_schedule(found, ticks, decision.next, decision.dropped)
        if outcome == "fired":
            self.fired += len(ticks)
            if decision.dropped:
                log.warning(
                    "schedule %s: %d missed tick(s) dropped (misfire=%s)",
                    schedule.name,
                    decision.dropped,
                    schedule.misfire.value,
                )
        elif outcome == "overlap":
            log.info("schedule %s: skipped, its previous run is not finished", schedule.name)


def _now() -> datetime:
    return datetime.now(UTC)
