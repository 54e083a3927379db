"""Fetching: leasing tasks as slots free up, and blocking on the wake-up keys when idle.

The fetcher owns the worker's blocking connection and the timer that keeps a known due
time (a delayed or retried task) while the worker waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from redis.exceptions import RedisError

from arqd.core.backoff import Outage, Reconnect
from arqd.store.codec import Fetched
from arqd.worker.running import Runner
from arqd.worker.storage import WorkerStore

log = logging.getLogger("arqd.worker")
IDLE_BLOCK = 2.0  # seconds an idle worker blocks before it looks for lapsed leases again
DUE_SLACK = 0.5  # seconds a blocking pop outlasts the due time the worker's timer keeps
LEASE_BATCH = 64  # most tasks one dequeue call leases (see Fetcher.__init__)


class Fetcher:
    """Leases tasks of ``queues`` for ``runner`` while it has free slots, until ``stopping``."""

    def __init__(
        self,
        store: WorkerStore,
        runner: Runner,
        queues: Sequence[str],
        concurrency: int,
        stopping: asyncio.Event,
    ) -> None:
        self.store = store
        self.runner = runner
        self.queues = list(queues)
        self.concurrency = concurrency
        self.stopping = stopping
        # One dequeue takes at most half the slots: with room left, the next dequeue is
        # sent while the tasks just leased run, so Redis and this process work at the same
        # time instead of taking turns (bench.core, processing no-op tasks at concurrency 200).
        self.lease_batch = max(1, min(concurrency // 2, LEASE_BATCH))
        self._wake = store.wake_wait()
        self._waiting = False  # blocked in the idle wait (see _wait_for_work)
        self._interrupting: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()

    async def run(self) -> None:
        backoff, outage = Reconnect(), Outage(log, "fetching")
        while not self.stopping.is_set():
            # Tasks a cluster's interrupted idle waits may still lease count as taken.
            free = self.concurrency - len(self.runner.running) - self._wake.reserved
            if free <= 0:
                await self._wait_for_slot()
                continue
            try:
                took, soonest = await self._fetch(free)
                if not took:
                    await self._wait_for_work(soonest, free)
                backoff.reset()
                outage.worked()
            except (RedisError, OSError) as exc:
                delay = backoff.next()
                outage.failed(exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), delay)
        with contextlib.suppress(RedisError, OSError):  # what is in flight starts, or lapses
            await self._wake.settle()

    async def close(self) -> None:
        await self._wake.close()

    async def _fetch(self, free: int) -> tuple[int, float]:
        took, soonest = 0, IDLE_BLOCK
        for queue in self.queues:
            fetched = await self.store.dequeue(queue, min(free - took, self.lease_batch))
            took, soonest = self._took(fetched, took, soonest)
            if took >= free:
                break
        return took, soonest

    def _took(self, fetched: Fetched, took: int, soonest: float) -> tuple[int, float]:
        """Start what one dequeue leased; the running count and soonest due time so far."""
        if self.runner.metrics is not None:
            self.runner.metrics.put_off(fetched)
        for lease in fetched.leases:
            self.runner.start(lease)
        if fetched.next_event_ms >= 0:
            soonest = min(soonest, fetched.next_event_ms / 1000)
        return took + len(fetched.leases), soonest

    async def _wait_for_work(self, timeout: float, free: int) -> None:
        """Block until woken, stopped, or ``timeout`` seconds pass, and start what the
        dequeue sent behind the blocking pop leased. A known due time (less than
        IDLE_BLOCK away) is kept by a timer here: Redis checks a blocking pop's timeout
        on its own clock tick (every 100 ms at its default hz), too coarse for a due time."""
        if self.stopping.is_set():
            return
        due = timeout < IDLE_BLOCK
        block = timeout + DUE_SLACK if due else timeout
        timer = self._loop.call_later(timeout, self.interrupt_wait) if due else None
        counts = shares(min(free, self.lease_batch * len(self.queues)), len(self.queues))
        self._waiting = True
        try:
            fetched = await self.store.wait_and_dequeue(
                self._wake, self.queues, block, counts, self._start_late
            )
        finally:
            self._waiting = False
            if timer is not None:
                timer.cancel()
        took = 0
        for one in fetched:
            took, _ = self._took(one, took, IDLE_BLOCK)
        if took:
            # Start the tasks before the next dequeue is sent: it lowers enqueue-to-start
            # latency (bench.core, latency at 500 tasks/s).
            await asyncio.sleep(0)

    def _start_late(self, fetched: list[Fetched]) -> None:
        """Start what a cluster's idle wait leased after it had returned; the slots it held
        back are free again (the loop may be waiting for one)."""
        for one in fetched:
            self._took(one, 0, IDLE_BLOCK)
        self.runner.slot_free.set()

    def interrupt_wait(self) -> None:
        """Cut an idle wait short (stopping, or a due time came); its leases are kept."""
        if self._waiting:
            self._interrupting = self._loop.create_task(self._send_interrupt())

    async def _send_interrupt(self) -> None:
        try:
            await self._wake.interrupt()
        except (RedisError, OSError) as exc:  # the wait fails on its own, and is retried
            log.debug("could not interrupt the idle wait: %s", exc)

    async def _wait_for_slot(self) -> None:
        """Until an attempt ends or the worker stops."""
        slot = self.runner.slot_free
        stopping = asyncio.ensure_future(self.stopping.wait())
        freed = asyncio.ensure_future(slot.wait())
        await asyncio.wait({stopping, freed}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        freed.cancel()
        slot.clear()


def shares(total: int, parts: int) -> list[int]:
    """``total`` split as evenly as it goes into ``parts`` whole numbers, larger first."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]
