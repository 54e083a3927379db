"""An attempt's metrics (imported only when metrics are on)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from arqd.observability.metrics import Metrics
from arqd.store.codec import Fetched

OUTCOME_STATUS = {
    "succeeded": "succeeded",
    "failed": "failed",
    "retry": "retried",
    "cancelled": "cancelled",
}


class AttemptMetrics:
    """The worker's per-attempt metrics, with each label set's child looked up once:
    ``labels()`` costs a lock and a tuple per call (bench.core, worker CPU per task)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._wait: dict[str, Histogram] = {}
        self._ended: dict[tuple[str, str], tuple[Counter, Histogram, Counter | None]] = {}

    def waited(self, queue: str, seconds: float) -> None:
        """How long a task was ready before this attempt started."""
        child = self._wait.get(queue)
        if child is None:
            child = self._wait[queue] = self.metrics.task_wait.labels(queue)
        child.observe(seconds)

    def ended(self, task_type: str, outcome: str, seconds: float) -> None:
        """Count an attempt that ended with ``outcome`` (a finish script outcome)."""
        status = OUTCOME_STATUS.get(outcome)
        if status is None:
            return
        children = self._ended.get((task_type, status))
        if children is None:
            m = self.metrics
            children = self._ended[(task_type, status)] = (
                m.tasks_processed.labels(task_type, status),
                m.task_duration.labels(task_type),
                m.task_retries.labels(task_type) if status == "retried" else None,
            )
        processed, duration, retries = children
        processed.inc()
        duration.observe(seconds)
        if retries is not None:
            retries.inc()

    def put_off(self, fetched: Fetched) -> None:
        """Tasks a dequeue left queued: put off by a rate limit (``arq_rate_limited_requests
        {scope="task"}``), held by a concurrency limit, a breaker or a pause (``arq_tasks_held``),
        or ended expired (``arq_tasks_expired``)."""
        if fetched.throttled:
            self.metrics.rate_limited.labels("task").inc(fetched.throttled)
        if fetched.held_by_concurrency:
            self._held(fetched.queue, "concurrency").inc(fetched.held_by_concurrency)
        if fetched.held_by_breaker:
            self._held(fetched.queue, "breaker").inc(fetched.held_by_breaker)
        if fetched.held_by_pause:
            self._held(fetched.queue, "paused").inc(fetched.held_by_pause)
        if fetched.expired:
            self.metrics.tasks_expired.labels(fetched.queue).inc(fetched.expired)

    def _held(self, queue: str, reason: str) -> Counter:
        return self.metrics.tasks_held.labels(queue, reason)
