"""An attempt's span (imported only when tracing is on: the OpenTelemetry API stays out
of a worker that does not trace)."""

from __future__ import annotations

from concurrent.futures import Executor

import orjson
from opentelemetry.trace import SpanKind, Status, StatusCode

from arqd.core.lease import Answer
from arqd.observability import tracing
from arqd.worker.attempt import Plan, run_attempt


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
