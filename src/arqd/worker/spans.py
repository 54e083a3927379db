"""An attempt's span (imported only when tracing is on: the OpenTelemetry API stays out
of a worker that does not trace)."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import orjson
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from arqd.core.lease import Answer
from arqd.observability import tracing
from arqd.worker.attempt import Plan


class AttemptSpans:
    """Each attempt in a span of its own."""

    async def traced(self, attempt: Coroutine[Any, Any, None], plan: Plan) -> None:
        """Run ``attempt`` in a span, the child of the context the task carries. All of it
        runs while the span is current: the handler, and the attempt's log line, which so
        carries the span's trace and span ids (``observability.logs``)."""
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
        ):
            await attempt

    def ended(self, answer: Answer | None) -> None:
        """Record on the current span (the attempt's) how the attempt ended."""
        span = trace.get_current_span()
        outcome = answer.outcome if answer else "lease_lost"
        span.set_attribute("arqd.outcome", outcome)
        if answer is not None and outcome in ("failed", "retry"):
            error = orjson.loads(answer.value)
            span.add_event(
                "exception",
                {"exception.type": error["type"], "exception.message": error["message"]},
            )
            span.set_status(Status(StatusCode.ERROR, error["message"]))
