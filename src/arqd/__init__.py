"""arqd: a production task queue on Redis."""

import sys


def _import_redis_without_its_otel_sdk() -> None:
    """Import redis-py with its optional OpenTelemetry SDK import refused.

    redis-py imports the OpenTelemetry metrics SDK (and psutil through it) when it is
    installed, for redis-py's own opt-in metrics, which arqd does not use: 3-4 MB of
    every worker's RSS (bench.compare, worker peak RSS), and the SDK in a process that
    does not trace. The SDK stays importable for whoever wants it afterwards; only
    redis-py's own metrics see it as missing. When something imported the SDK or redis
    first, nothing is changed.
    """
    blocked = "opentelemetry.sdk.metrics"
    if "redis" in sys.modules or blocked in sys.modules:
        return
    sys.modules[blocked] = None  # type: ignore[assignment]  # an import of it raises ImportError
    try:
        import redis  # noqa: F401
    finally:
        del sys.modules[blocked]


_import_redis_without_its_otel_sdk()
