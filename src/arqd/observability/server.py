"""A worker process's own small HTTP server: /metrics, /metrics.json and /health."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from arqd.observability.export import TEXT_CONTENT_TYPE, as_json, as_text, refreshed
from arqd.observability.metrics import Metrics
from arqd.store.store import Store

log = logging.getLogger("arqd.metrics")


def metrics_app(metrics: Metrics, store: Store) -> Starlette:
    async def text(_: Request) -> Response:
        return Response(as_text(await refreshed(metrics, store)), media_type=TEXT_CONTENT_TYPE)

    async def json(_: Request) -> Response:
        body = orjson.dumps(as_json(await refreshed(metrics, store)))
        return Response(body, media_type="application/json")

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})  # the process answers: it is alive

    routes = [Route("/metrics", text), Route("/metrics.json", json), Route("/health", health)]
    return Starlette(routes=routes)


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the process hosting it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_metrics(
    metrics: Metrics, store: Store, host: str, port: int, stop: asyncio.Event
) -> None:
    """Serve until ``stop`` is set."""
    config = uvicorn.Config(
        metrics_app(metrics, store),
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        access_log=False,
    )
    server = QuietServer(config)
    task = asyncio.create_task(_serve(server, host, port))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopping.cancel()
    await task


async def _serve(server: uvicorn.Server, host: str, port: int) -> None:
    try:
        await server.serve()
    except SystemExit:  # uvicorn exits this way when it cannot bind; the worker goes on
        log.error(
            "metrics server could not listen on %s:%d; set METRICS_PORT to a free port "
            "(0 picks one) or ENABLE_PROMETHEUS=false",
            host,
            port,
        )
