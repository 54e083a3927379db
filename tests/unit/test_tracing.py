"""What a producer puts into a task's trace context."""

from __future__ import annotations

from opentelemetry import baggage, context, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from arqd.observability.tracing import inject_current


def test_no_context_carries_nothing() -> None:
    assert inject_current() == {}


def test_a_current_span_is_carried_as_traceparent() -> None:
    span = NonRecordingSpan(SpanContext(0x1F, 0x2E, is_remote=False, trace_flags=TraceFlags(1)))
    token = context.attach(trace.set_span_in_context(span))
    try:
        carrier = inject_current()
    finally:
        context.detach(token)
    assert carrier["traceparent"] == f"00-{0x1F:032x}-{0x2E:016x}-01"


def test_baggage_alone_is_carried_too() -> None:
    token = context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        assert inject_current() == {"baggage": "tenant=acme"}
    finally:
        context.detach(token)
