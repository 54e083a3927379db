"""The worker: leases tasks as slots free up, runs them, answers in batches.

One task group holds the loops: fetching (sized by free slots, blocking on a wake-up
key when idle), answering (batched finish calls), and the heartbeat (lease renewal,
cancellation and lost-lease notices, the worker registry). SIGTERM or SIGINT stop the
fetching; running attempts get the grace period, then are handed back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from redis.exceptions import RedisError

from arqd.core.backoff import RetryPolicy
from arqd.core.ids import new_task_id
from arqd.core.lease import Answer, Lease
from arqd.core.settings import Settings
from arqd.observability.metrics import Metrics
from arqd.resilience.breaker import BreakerPolicy
from arqd.resilience.circuit import CircuitBreaker
from arqd.store.codec import Fetched
from arqd.store.leases import Limit
from arqd.store.store import Store
from arqd.worker import telemetry
from arqd.worker.attempt import Plan, Profile, StopReason, TaskContext, run_attempt
from arqd.worker.registry import Registry

log = logging.getLogger("arqd.worker")
IDLE_BLOCK = 2.0  # seconds an idle worker blocks before it looks for lapsed leases again
DUE_SLACK = 0.5  # seconds a blocking pop outlasts the due time the worker's timer keeps
LEASE_BATCH = 64  # most tasks one dequeue call leases (see Worker._lease_batch)


class Worker:
    """Runs the task types of ``registry`` from ``queues`` with ``concurrency`` slots."""

    def __init__(
        self,
        registry: Registry,
        store: Store,
        queues: Sequence[str] | None = None,
        concurrency: int | None = None,
        worker_id: str | None = None,
        metrics: Metrics | None = None,
        traced: bool = False,
    ) -> None:
        self.registry = registry
        self.store = store
        self.metrics = metrics
        self._attempt_metrics = telemetry.AttemptMetrics(metrics) if metrics else None
        self.traced = traced
        self.settings: Settings = store.settings
        self.queues = list(queues or [self.settings.queue])
        self.concurrency = concurrency or self.settings.concurrency
        # One dequeue takes at most half the slots: with room left, the next dequeue is
        # sent while the tasks just leased run, so Redis and this process work at the same
        # time instead of taking turns (no-op tasks, 200 slots: 23k -> 35-40k tasks/s).
        self._lease_batch = max(1, min(self.concurrency // 2, LEASE_BATCH))
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{new_task_id()[:6]}"
        self._running: dict[str, tuple[asyncio.Task[None], Plan, asyncio.TimerHandle]] = {}
        self._answers: dict[str, list[Answer]] = defaultdict(list)
        self._answers_ready = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._stopping = asyncio.Event()
        self._drained = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting = False  # blocked in the idle wait (see _wait_for_work)
        self._interrupting: asyncio.Task[None] | None = None
        self._wake = store.leases.wake_wait()  # this worker's own connection for idle waits
        self._profiles: dict[str, Profile] = {}
        self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="arqd-task")
        self.started_at = time.time()
        self.processed = 0
        self._limits = [
            Limit(
                t.name,
                t.rate_limit.interval_ms if t.rate_limit else 0.0,
                t.rate_limit.burst if t.rate_limit else 1,
                t.concurrency or 0,
            )
            for t in registry
            if t.rate_limit or t.concurrency
        ]

    def stop(self) -> None:
        """Stop fetching; running attempts get the grace period (safe from a signal handler)."""
        self._stopping.set()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._interrupt_wait)

    async def run(self, install_signals: bool = True) -> None:
        """Work until ``stop()`` or SIGTERM/SIGINT, then shut down gracefully."""
        self._loop = asyncio.get_running_loop()
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(sig, self.stop)
        log.info(
            "worker %s started: queues=%s concurrency=%d types=%s",
            self.id,
            self.queues,
            self.concurrency,
            sorted(self.registry.types),
        )
        await self.store.workers.register(self.id, self._describe())
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._heartbeat_loop())
                group.create_task(self._answer_loop())
                await self._fetch_loop()
                await self._drain()
                self._drained.set()
                self._answers_ready.set()
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)
            await self._wake.close()
            try:
                await self._flush_answers()
                await self.store.workers.remove(self.id)
            except (RedisError, OSError) as exc:
                log.error(
                    "could not record the last answers (their leases will lapse and "
                    "the tasks run again): %s",
                    exc,
                )
            log.info("worker %s stopped after %d tasks", self.id, self.processed)

    # Fetching.

    async def _fetch_loop(self) -> None:
        backoff = _Backoff()
        while not self._stopping.is_set():
            free = self.concurrency - len(self._running)
            if free <= 0:
                await self._wait_for(self._slot_free)
                self._slot_free.clear()
                continue
            try:
                took, soonest = await self._fetch(free)
                if not took:
                    await self._wait_for_work(soonest, free)
                backoff.reset()
            except (RedisError, OSError) as exc:
                await self._wait_for_delay(backoff.next(), f"fetching failed: {exc}")

    async def _fetch(self, free: int) -> tuple[int, float]:
        took, soonest = 0, IDLE_BLOCK
        for queue in self.queues:
            fetched = await self.store.leases.dequeue(
                queue, min(free - took, self._lease_batch), self.id, self._limits
            )
            took, soonest = self._took(fetched, took, soonest)
            if took >= free:
                break
        return took, soonest

    def _took(self, fetched: Fetched, took: int, soonest: float) -> tuple[int, float]:
        """Start what one dequeue leased; the running count and soonest due time so far."""
        if fetched.deferred and self.metrics:
            self.metrics.rate_limited.labels("task").inc(fetched.deferred)
        for lease in fetched.leases:
            self._start(lease)
        if fetched.next_event_ms >= 0:
            soonest = min(soonest, fetched.next_event_ms / 1000)
        return took + len(fetched.leases), soonest

    async def _wait_for_work(self, timeout: float, free: int) -> None:
        """Block until woken, stopped, or ``timeout`` seconds pass, and start what the
        dequeue sent behind the blocking pop leased. A known due time (less than
        IDLE_BLOCK away) is kept by a timer here: Redis checks a blocking pop's timeout
        on its own clock tick (every 100 ms at its default hz), too coarse for a due time."""
        if self._stopping.is_set():
            return
        due = timeout < IDLE_BLOCK
        block = timeout + DUE_SLACK if due else timeout
        loop = self._loop or asyncio.get_running_loop()
        timer = loop.call_later(timeout, self._interrupt_wait) if due else None
        counts = _shares(min(free, self._lease_batch * len(self.queues)), len(self.queues))
        self._waiting = True
        try:
            fetched = await self.store.leases.wait_and_dequeue(
                self._wake, self.queues, block, counts, self.id, self._limits
            )
        finally:
            self._waiting = False
            if timer is not None:
                timer.cancel()
        took = 0
        for one in fetched:
            took, _ = self._took(one, took, IDLE_BLOCK)
        if took:
            # The tasks start before the next dequeue is sent: enqueue-to-start p50 at
            # 500 tasks/s 0.70 -> 0.57 ms.
            await asyncio.sleep(0)

    def _interrupt_wait(self) -> None:
        """Cut an idle wait short (stopping, or a due time came); its leases are kept."""
        if self._waiting and self._loop is not None:
            self._interrupting = self._loop.create_task(self._send_interrupt())

    async def _send_interrupt(self) -> None:
        try:
            await self._wake.interrupt()
        except (RedisError, OSError) as exc:  # the wait fails on its own, and is retried
            log.debug("could not interrupt the idle wait: %s", exc)

    async def _wait_for(self, event: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(self._stopping.wait())
        other = asyncio.ensure_future(event.wait())
        await asyncio.wait({stopping, other}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        other.cancel()

    async def _wait_for_delay(self, delay: float, why: str) -> None:
        log.warning("%s; retrying in %.1f s", why, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)

    # Running.

    def _start(self, lease: Lease) -> None:
        if self._attempt_metrics is not None:
            self._attempt_metrics.waited(lease.queue, lease.waited_ms / 1000)
        profile = self._profiles.get(lease.type) or self._profile(lease.type)
        if lease.max_retries is not None or lease.timeout_ms:
            profile = replace(
                profile,
                policy=replace(profile.policy, max_retries=lease.max_retries)
                if lease.max_retries is not None
                else profile.policy,
                timeout=lease.timeout_ms / 1000 if lease.timeout_ms else profile.timeout,
            )
        context = TaskContext(
            lease.id,
            lease.type,
            lease.queue,
            lease.attempt,
            profile.policy.max_retries,
            self._breaker,
        )
        plan = Plan(lease, profile, context)
        loop = self._loop or asyncio.get_running_loop()
        task = loop.create_task(self._attempt(plan))
        timer = loop.call_later(profile.timeout, self._interrupt, lease.id, StopReason.TIMEOUT)
        self._running[lease.id] = (task, plan, timer)

    def _profile(self, name: str) -> Profile:
        """How this worker runs a task type, from its declaration and the settings."""
        s = self.settings
        task_type = self.registry.get(name)
        if task_type is None:
            profile = Profile(None, RetryPolicy(max_retries=0), s.task_timeout / 1000)
        else:
            base, cap = s.retry_delays()
            breaker = task_type.breaker
            profile = Profile(
                task_type,
                task_type.policy(s.queue_max_retries, base, cap),
                task_type.timeout or s.task_timeout / 1000,
                breaker,
                (breaker and breaker.threshold) or s.circuit_breaker_threshold,
                round(breaker.timeout * 1000)
                if breaker and breaker.timeout is not None
                else s.circuit_breaker_timeout,
            )
        self._profiles[name] = profile
        return profile

    async def _attempt(self, plan: Plan) -> None:
        started = time.perf_counter()
        try:
            if self.traced:
                answer = await telemetry.traced_attempt(plan, self._executor)
            else:
                answer = await run_attempt(plan, self._executor)
        finally:
            entry = self._running.pop(plan.lease.id, None)
            if entry is not None:
                entry[2].cancel()
            self._slot_free.set()
        if answer is None:
            log.warning("task %s: lease lost, its answer is dropped", plan.lease.id)
            return
        self.processed += 1
        self._answers[plan.lease.queue].append(answer)
        self._answers_ready.set()
        seconds = time.perf_counter() - started
        telemetry.record(self._attempt_metrics, plan, answer, seconds, self.id)

    def _breaker(self, name: str, policy: BreakerPolicy | None) -> CircuitBreaker:
        return CircuitBreaker(name, self.store, policy, self._loop)

    def _interrupt(self, task_id: str, reason: StopReason) -> None:
        entry = self._running.get(task_id)
        if entry is None:
            return
        task, plan, _ = entry
        current = plan.context.stop_reason
        if current is reason:
            return
        if current is not StopReason.CANCEL:  # a cancelled task ends cancelled, whatever follows
            plan.context.stop_reason = reason
        sync = plan.task_type is not None and not plan.task_type.is_async
        if not (sync and reason is StopReason.CANCEL):  # sync handlers stop cooperatively
            task.cancel()

    async def _drain(self) -> None:
        """Give running attempts the grace period, then hand the rest back."""
        tasks = [task for task, _, _ in self._running.values()]
        if tasks:
            log.info(
                "stopping: waiting up to %.1f s for %d running tasks",
                self.settings.shutdown_grace / 1000,
                len(tasks),
            )
            await asyncio.wait(tasks, timeout=self.settings.shutdown_grace / 1000)
        for task_id in list(self._running):
            self._interrupt(task_id, StopReason.SHUTDOWN)
        remaining = [task for task, _, _ in self._running.values()]
        if remaining:
            await asyncio.wait(remaining)

    # Answering.

    async def _answer_loop(self) -> None:
        backoff = _Backoff()
        while not self._drained.is_set():
            await self._answers_ready.wait()
            self._answers_ready.clear()
            try:
                await self._flush_answers()
                backoff.reset()
            except (RedisError, OSError) as exc:
                self._answers_ready.set()
                delay = backoff.next()
                log.warning("answering failed: %s; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)

    async def _flush_answers(self) -> None:
        for queue in list(self._answers):
            batch = self._answers.pop(queue)
            if not batch:
                continue
            try:
                accepted = await self.store.leases.finish(queue, batch)
            except BaseException:
                self._answers[queue][:0] = batch
                raise
            for answer, ok in zip(batch, accepted, strict=True):
                if not ok:
                    log.warning(
                        "task %s: answer refused, a newer attempt holds the lease", answer.lease.id
                    )

    # Heartbeat.

    async def _heartbeat_loop(self) -> None:
        interval = self.settings.lease_timeout / 3000
        renewed = time.monotonic()
        while not self._drained.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), interval)
                return
            try:
                await self._heartbeat()
                renewed = time.monotonic()
            except (RedisError, OSError) as exc:
                log.warning("heartbeat failed: %s", exc)
                if time.monotonic() - renewed > self.settings.lease_timeout / 1000:
                    self._give_up_leases()

    def _give_up_leases(self) -> None:
        """Leases not renewed for a whole lease period have lapsed: other workers may run
        those tasks now, so this one stops them rather than hold what it cannot renew."""
        if self._running:
            log.error(
                "leases could not be renewed for %.1f s; stopping %d attempts",
                self.settings.lease_timeout / 1000,
                len(self._running),
            )
        for task_id in list(self._running):
            self._interrupt(task_id, StopReason.LOST)

    async def _heartbeat(self) -> None:
        by_queue: dict[str, list[Lease]] = defaultdict(list)
        for _, plan, _ in self._running.values():
            by_queue[plan.lease.queue].append(plan.lease)
        for queue, leases in by_queue.items():
            renewal = await self.store.leases.heartbeat(queue, leases)
            for task_id in renewal.lost:
                self._interrupt(task_id, StopReason.LOST)
            for task_id in renewal.cancel:
                self._interrupt(task_id, StopReason.CANCEL)
        await self.store.workers.register(self.id, self._describe())

    def _describe(self) -> dict[str, object]:
        return {
            "id": self.id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": self.queues,
            "concurrency": self.concurrency,
            "running": sorted(self._running),
            "processed": self.processed,
            "started_at": self.started_at,
            "types": sorted(self.registry.types),
        }


def _shares(total: int, parts: int) -> list[int]:
    """``total`` split as evenly as it goes into ``parts`` whole numbers, larger first."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


class _Backoff:
    """Jittered exponential delays for reconnecting, capped at 10 s."""

    def __init__(self) -> None:
        self.failures = 0

    def next(self) -> float:
        self.failures += 1
        return max(0.05, RetryPolicy(base_delay=0.1, max_delay=10.0).delay(self.failures))

    def reset(self) -> None:
        self.failures = 0
