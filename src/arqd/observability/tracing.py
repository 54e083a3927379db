"""OpenTelemetry tracing: set up from the settings; W3C context carried inside tasks.

Spans go over OTLP/HTTP (Jaeger ingests OTLP natively) to JAEGER_ENDPOINT, or wherever
the standard OTEL_EXPORTER_OTLP_* variables say when it is unset. The SDK and the exporter
(protobuf) are imported only when tracing is enabled: a worker without it stays lean.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from opentelemetry import propagate, trace
from opentelemetry.context import Context, get_current

from arqd.core.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider


def setup_tracing(settings: Settings, service_name: str) -> TracerProvider | None:
    """Install a tracer provider for this process when JAEGER_ENABLED; None otherwise."""
    if not settings.jaeger_enabled:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
        sampler=ParentBased(TraceIdRatioBased(settings.trace_sample_rate)),
    )
    exporter = (
        OTLPSpanExporter(endpoint=settings.jaeger_endpoint)
        if settings.jaeger_endpoint
        else OTLPSpanExporter()
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def inject_current() -> dict[str, str]:
    """The caller's current trace context as W3C headers (empty when there is none)."""
    carrier: dict[str, str] = {}
    if get_current():  # an empty context gives any propagator nothing to carry
        propagate.inject(carrier)
    return carrier


def extract(carrier: Mapping[str, str]) -> Context:
    """The context a task carries, to parent the worker's span."""
    return propagate.extract(carrier)


def tracer() -> trace.Tracer:
    return trace.get_tracer("arqd")
