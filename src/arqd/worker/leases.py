"""Keeping leases: the running set, and the heartbeat that renews its leases.

The heartbeat also hears of cancellations and of leases lost to another attempt, and
keeps the worker's entry in the registry of live workers fresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from arqd.core.backoff import Outage
from arqd.core.lease import Lease
from arqd.worker.attempt import Plan, StopReason
from arqd.worker.storage import WorkerStore

log = logging.getLogger("arqd.worker")


@dataclass(frozen=True, slots=True)
class RunningAttempt:
    """One attempt this worker runs: its asyncio task, its plan, and its timeout timer."""

    task: asyncio.Task[None]
    plan: Plan
    timeout: asyncio.TimerHandle

    def interrupt(self, reason: StopReason) -> None:
        """Stop the attempt for ``reason``; a cancelled task ends cancelled, whatever follows."""
        context = self.plan.context
        current = context.stop_reason
        if current is reason:
            return
        if current is not StopReason.CANCEL:
            context.stop_reason = reason
        task_type = self.plan.task_type
        sync = task_type is not None and not task_type.is_async
        if not (sync and reason is StopReason.CANCEL):  # sync handlers stop cooperatively
            self.task.cancel()


class RunningSet:
    """The attempts this worker runs, by task id."""

    def __init__(self) -> None:
        self._by_id: dict[str, RunningAttempt] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[RunningAttempt]:
        """Over a copy: interrupting an attempt may end it, and remove it from the set."""
        return iter(list(self._by_id.values()))

    def ids(self) -> list[str]:
        return sorted(self._by_id)

    def add(self, attempt: RunningAttempt) -> None:
        self._by_id[attempt.plan.lease.id] = attempt

    def remove(self, task_id: str) -> None:
        """Forget an attempt that ended, and its timeout timer."""
        attempt = self._by_id.pop(task_id, None)
        if attempt is not None:
            attempt.timeout.cancel()

    def interrupt(self, task_id: str, reason: StopReason) -> None:
        attempt = self._by_id.get(task_id)
        if attempt is not None:
            attempt.interrupt(reason)

    def interrupt_all(self, reason: StopReason) -> None:
        for attempt in self:
            attempt.interrupt(reason)

    def tasks(self) -> list[asyncio.Task[None]]:
        return [attempt.task for attempt in self._by_id.values()]

    def leases_by_queue(self) -> dict[str, list[Lease]]:
        by_queue: dict[str, list[Lease]] = defaultdict(list)
        for attempt in self._by_id.values():
            by_queue[attempt.plan.lease.queue].append(attempt.plan.lease)
        return by_queue


class Heartbeat:
    """Renews the running set's leases every third of the lease timeout, until ``done``."""

    def __init__(
        self,
        store: WorkerStore,
        running: RunningSet,
        describe: Callable[[], dict[str, Any]],
        done: asyncio.Event,
    ) -> None:
        self.store = store
        self.running = running
        self.describe = describe
        self.done = done
        self.lease_timeout = store.settings.lease_timeout / 1000

    async def run(self) -> None:
        renewed, outage = time.monotonic(), Outage(log, "heartbeat")
        while not self.done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.done.wait(), self.lease_timeout / 3)
                return
            try:
                await self.beat()
                renewed = time.monotonic()
                outage.worked()
            except (RedisError, OSError) as exc:
                outage.failed(exc)
                if time.monotonic() - renewed > self.lease_timeout:
                    self._give_up()

    async def beat(self) -> None:
        """Renew every lease, act on what the store says of them, and say the worker lives."""
        for queue, leases in self.running.leases_by_queue().items():
            renewal = await self.store.heartbeat(queue, leases)
            for task_id in renewal.lost:
                self.running.interrupt(task_id, StopReason.LOST)
            for task_id in renewal.cancel:
                self.running.interrupt(task_id, StopReason.CANCEL)
        await self.store.register(self.describe())

    def _give_up(self) -> None:
        """Leases not renewed for a whole lease period have lapsed: other workers may run
        those tasks now, so this one stops them rather than hold what it cannot renew."""
        if self.running:
            log.error(
                "leases could not be renewed for %.1f s; stopping %d attempts",
                self.lease_timeout,
                len(self.running),
            )
        self.running.interrupt_all(StopReason.LOST)
