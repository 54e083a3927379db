"""What an attempt tells the outside: its span, its metrics and its log line."""

from __future__ import annotations

import logging
from concurrent.futures import Executor

import orjson
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import Counter, Histogram

from arqd.core.lease import Answer
from arqd.observability import tracing
from arqd.observability.metrics import Metrics
from arqd.worker.attempt import Plan, run_attempt

log = logging.getLogger("arqd.worker")
OUTCOME_STATUS = {
    "succeeded": "succeeded",
    "failed": "failed",
    "retry": "retried",
    "cancelled": "cancelled",
}


async def traced_attempt(plan: Plan, executor: Executor) -> Answer | None:
    """Run the attempt in a span, the child of the context the task carries."""
    lease = plan.lease
    parent = tracing.extract(orjson.loads(lease.trace)) if lease.trace else None
    attributes: dict[str, str | int] = {
        "arqd.task.id": lease.id,
        "arqd.task.type": lease.type,
        "arqd.queue": lease.queue,
        "arqd.attempt": lease.attempt,
    }
    with tracing.tracer().start_as_current_span(
        f"arqd.task {lease.type}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
    ) as span:
        answer = await run_attempt(plan, executor)
        outcome = answer.outcome if answer else "lease_lost"
        span.set_attribute("arqd.outcome", outcome)
        if answer is not None and outcome in ("failed", "retry"):
            error = orjson.loads(answer.value)
            span.add_event(
                "exception",
                {"exception.type": error["type"], "exception.message": error["message"]},
            )
            span.set_status(Status(StatusCode.ERROR, error["message"]))
        return answer


class AttemptMetrics:
    """The worker's per-attempt metrics, with each label set's child looked up once:
    ``labels()`` costs a lock and a tuple per call, about a microsecond a metric."""

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

    def ended(self, task_type: str, status: str, seconds: float) -> None:
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


def record(
    metrics: AttemptMetrics | None, plan: Plan, answer: Answer, seconds: float, worker_id: str
) -> None:
    """Count the attempt and log one line for it (at info level)."""
    lease = plan.lease
    status = OUTCOME_STATUS.get(answer.outcome)
    if metrics is not None and status is not None:
        metrics.ended(lease.type, status, seconds)
    if log.isEnabledFor(logging.INFO):
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
