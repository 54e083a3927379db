"""``arqd serve``: the API under uvicorn, with an in-process worker unless told otherwise."""

from __future__ import annotations

import gc
import logging

import uvicorn
from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from arqd.api.app import create_app
from arqd.api.ws_protocol import BoundedCloseProtocol
from arqd.client import resolve_url
from arqd.core.errors import ArqdError
from arqd.core.settings import Settings
from arqd.core.urls import redacted
from arqd.observability.logs import setup_logging
from arqd.observability.tracing import setup_tracing
from arqd.worker import Registry

log = logging.getLogger("arqd.api")


def serve(
    settings: Settings,
    host: str,
    port: int,
    registry: Registry | None,
    with_worker: bool = True,
) -> None:
    """Serve until SIGINT or SIGTERM (blocking). ``registry`` None runs the demo task types.

    With no REDIS_URL the embedded server for ARQD_DATA_DIR is started (or reused) first.
    """
    setup_logging(settings.log_level, settings.log_format)
    try:
        url = resolve_url(settings)
    except ArqdError as exc:
        log.error("%s", exc)
        raise SystemExit(2) from None
    settings = settings.model_copy(update={"redis_url": url, "host": host, "port": port})
    log.info(
        "serving on http://%s:%d (Redis %s, %s)",
        host,
        port,
        redacted(url),
        "with a worker" if with_worker else "API only",
    )
    provider = setup_tracing(settings, "arqd-api")
    app = create_app(
        settings, registry=registry, with_worker=with_worker, traced=provider is not None
    )
    if provider is not None:
        FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
    _run(app, settings, host, port)


def _run(app: FastAPI, settings: Settings, host: str, port: int) -> None:
    _tune_garbage_collector()
    level = settings.log_level.upper()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        log_level=level.lower(),
        access_log=level == "DEBUG",  # a log line per request costs throughput
        server_header=False,
        ws=BoundedCloseProtocol,  # a client that stops reading cannot hold its connection
        timeout_graceful_shutdown=settings.shutdown_grace // 1000 + 5,
    )
    uvicorn.Server(config).run()


def _tune_garbage_collector() -> None:
    # An enqueue allocates thousands of short-lived objects (a batch, millions): with the
    # default thresholds the cyclic collector runs every few requests and walks every object
    # imported at start-up each time. Freeze those, and collect young objects less often.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
