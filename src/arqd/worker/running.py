"""Running attempts: each lease becomes an attempt with its timeout; answers go back in
batches, one finish call per queue, while the next attempts run."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from arqd.core.backoff import Outage, Reconnect, RetryPolicy
from arqd.core.lease import Answer, Lease
from arqd.core.settings import Settings
from arqd.resilience.breaker import BreakerPolicy
from arqd.resilience.circuit import CircuitBreaker
from arqd.store.leases import Finished
from arqd.worker.attempt import Plan, Profile, StopReason, TaskContext, run_attempt
from arqd.worker.leases import RunningAttempt, RunningSet
from arqd.worker.registry import Registry
from arqd.worker.reporting import CURRENT, LogCapture, Reporting
from arqd.worker.storage import WorkerStore

if TYPE_CHECKING:
    from arqd.observability.metrics import Metrics
    from arqd.worker.spans import AttemptSpans
    from arqd.worker.telemetry import AttemptMetrics

log = logging.getLogger("arqd.worker")


class Runner:
    """Starts an attempt for each lease and hands its answer to ``answers``."""

    def __init__(
        self,
        registry: Registry,
        store: WorkerStore,
        concurrency: int,
        metrics: Metrics | None,
        traced: bool,
    ) -> None:
        self.registry = registry
        self.store = store
        self.settings: Settings = store.settings
        self.running = RunningSet()
        self.answers = Answers(store)
        self.slot_free = asyncio.Event()
        self.processed = 0
        self.metrics = _attempt_metrics(metrics)
        self._spans = _spans() if traced else None
        self._profiles: dict[str, Profile] = {}
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix="arqd-task")
        self._loop = asyncio.get_running_loop()
        self.reporting = Reporting(store, self._loop)
        LogCapture.start()  # a handler's logging calls become its task's log lines

    def start(self, lease: Lease) -> None:
        """Run an attempt for ``lease``, stopped with ``StopReason.TIMEOUT`` if it overruns."""
        if self.metrics is not None:
            self.metrics.waited(lease.queue, lease.waited_ms / 1000)
        profile = self._profiles.get(lease.type) or self._profile(lease.type)
        if lease.max_retries is not None or lease.timeout_ms:
            profile = _overridden(profile, lease)
        context = TaskContext(
            lease.id,
            lease.type,
            lease.queue,
            lease.attempt,
            profile.policy.max_retries,
            self._breaker,
            None,  # positional: keyword arguments cost a dataclass __init__ half again
            self.reporting,
            lease.token,
        )
        plan = Plan(lease, profile, context)
        attempt = self._attempt(plan)
        if self._spans is not None:
            attempt = self._spans.traced(attempt, plan)
        task = self._loop.create_task(attempt)
        timer = self._loop.call_later(
            profile.timeout, self.running.interrupt, lease.id, StopReason.TIMEOUT
        )
        self.running.add(RunningAttempt(task, plan, timer))

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
        """Run one attempt and hand its answer on. Traced, all of it runs inside the
        attempt's span, its log line too, which so carries the span's trace and span ids."""
        started = time.perf_counter()
        CURRENT.set(plan.context)  # this attempt's task (and its thread) logs to it
        try:
            answer = await run_attempt(plan, self._executor)
        finally:
            self.running.remove(plan.lease.id)
            self.slot_free.set()
        if plan.context.report is not None:  # its last progress and lines, before its answer
            await plan.context.report.close(answer.outcome if answer else None)
        if self._spans is not None:
            self._spans.ended(answer)
        if answer is None:
            log.warning("task %s: lease lost, its answer is dropped", plan.lease.id)
            return
        self.processed += 1
        self.answers.add(answer)
        seconds = time.perf_counter() - started
        if self.metrics is not None:
            self.metrics.ended(plan.lease.type, answer.outcome, seconds)
        _log_attempt(plan, answer, seconds, self.store.worker_id)

    def _breaker(self, name: str, policy: BreakerPolicy | None) -> CircuitBreaker:
        return self.store.breaker(name, policy, self._loop)

    async def drain(self, grace: float) -> None:
        """Give running attempts ``grace`` seconds, then hand the rest back."""
        tasks = self.running.tasks()
        if tasks:
            log.info("stopping: waiting up to %.1f s for %d running tasks", grace, len(tasks))
            await asyncio.wait(tasks, timeout=grace)
        self.running.interrupt_all(StopReason.SHUTDOWN)
        remaining = self.running.tasks()
        if remaining:
            await asyncio.wait(remaining)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        LogCapture.stop()


def _attempt_metrics(metrics: Metrics | None) -> AttemptMetrics | None:
    if metrics is None:
        return None
    from arqd.worker.telemetry import AttemptMetrics  # prometheus_client: only with metrics

    return AttemptMetrics(metrics)


def _spans() -> AttemptSpans:
    from arqd.worker.spans import AttemptSpans  # OpenTelemetry: only when tracing

    return AttemptSpans()


def _overridden(profile: Profile, lease: Lease) -> Profile:
    """``profile`` with the retries and timeout the task itself was enqueued with."""
    policy = profile.policy
    if lease.max_retries is not None:
        policy = replace(policy, max_retries=lease.max_retries)
    timeout = lease.timeout_ms / 1000 if lease.timeout_ms else profile.timeout
    return replace(profile, policy=policy, timeout=timeout)


def _log_attempt(plan: Plan, answer: Answer, seconds: float, worker_id: str) -> None:
    """One log line for the attempt (at info level)."""
    if not log.isEnabledFor(logging.INFO):
        return
    lease = plan.lease
    log.info(
        "task %s %s after %.3f s",
        lease.id,
        answer.outcome,
        seconds,
        extra={
            "task_id": lease.id,
            "task_type": lease.type,
            "queue": lease.queue,
            "attempt": lease.attempt,
            "outcome": answer.outcome,
            "worker": worker_id,
        },
    )


class Answers:
    """Answers waiting for their finish call, by queue; sent in batches until ``close``."""

    def __init__(self, store: WorkerStore) -> None:
        self.store = store
        # Told of what finishes left for the relay: notices, outboxes (see store.relay).
        self.on_relay: Callable[[str, Finished], None] | None = None
        self._waiting: dict[str, list[Answer]] = defaultdict(list)
        self._ready = asyncio.Event()
        self._closed = False

    def add(self, answer: Answer) -> None:
        self._waiting[answer.lease.queue].append(answer)
        self._ready.set()

    def close(self) -> None:
        """End ``run`` (what is left is sent by a last ``flush``)."""
        self._closed = True
        self._ready.set()

    async def run(self) -> None:
        backoff, outage = Reconnect(), Outage(log, "answering")
        while not self._closed:
            await self._ready.wait()
            self._ready.clear()
            try:
                await self.flush()
                backoff.reset()
                outage.worked()
            except (RedisError, OSError) as exc:
                self._ready.set()
                delay = backoff.next()
                outage.failed(exc, delay)
                await asyncio.sleep(delay)

    async def flush(self) -> None:
        """Send every waiting answer; a batch that fails is kept for the next flush."""
        for queue in list(self._waiting):
            batch = self._waiting.pop(queue)
            if not batch:
                continue
            try:
                finished = await self.store.finish(queue, batch)
            except BaseException:
                self._waiting[queue][:0] = batch
                raise
            if (finished.noticed or finished.outboxes) and self.on_relay is not None:
                self.on_relay(queue, finished)
            for answer, ok in zip(batch, finished.accepted, strict=True):
                if not ok:
                    log.warning(
                        "task %s: answer refused, a newer attempt holds the lease", answer.lease.id
                    )
