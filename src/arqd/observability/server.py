"""A worker process's own small HTTP server: /metrics, /metrics.json and /health.

Three GET routes need no web framework: the standard library's threading HTTP server (the
one prometheus_client's ``start_http_server`` uses) answers them from a thread of its own,
so a worker does not load uvicorn and Starlette (~4 MB of RSS). Queue gauges are read from
Redis at scrape time on the worker's event loop, where its Redis client lives.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from arqd.observability.export import TEXT_CONTENT_TYPE, as_json, as_text, refreshed
from arqd.observability.metrics import Metrics
from arqd.store.store import Store

log = logging.getLogger("arqd.metrics")
Route = Callable[[], Coroutine[Any, Any, tuple[bytes, str]]]
SCRAPE_TIMEOUT = 10.0  # seconds a scrape may wait for the event loop and Redis


def metrics_routes(metrics: Metrics, store: Store) -> dict[str, Route]:
    async def text() -> tuple[bytes, str]:
        return as_text(await refreshed(metrics, metrics.refresh(store))), TEXT_CONTENT_TYPE

    async def json() -> tuple[bytes, str]:
        return orjson.dumps(
            as_json(await refreshed(metrics, metrics.refresh(store)))
        ), "application/json"

    async def health() -> tuple[bytes, str]:
        return b'{"status":"ok"}', "application/json"  # the process answers: it is alive

    return {"/metrics": text, "/metrics.json": json, "/health": health}


def _handler(routes: dict[str, Route], loop: asyncio.AbstractEventLoop) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Prometheus scrapes

        def do_GET(self) -> None:
            route = routes.get(self.path.partition("?")[0])
            if route is None:
                self._send(404, b"not found\n", "text/plain")
                return
            try:
                future = asyncio.run_coroutine_threadsafe(route(), loop)
                body, content_type = future.result(SCRAPE_TIMEOUT)
            except Exception as exc:  # the loop is gone or too busy: say so, stay up
                log.warning("a metrics scrape failed: %r", exc)
                self._send(503, b"metrics unavailable, try again\n", "text/plain")
                return
            self._send(200, body, content_type)

        def do_HEAD(self) -> None:
            self.do_GET()

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # a scrape every few seconds is not news

    return Handler


async def serve_metrics(
    metrics: Metrics, store: Store, host: str, port: int, stop: asyncio.Event
) -> None:
    """Serve until ``stop`` is set. A port that cannot be bound is logged, not fatal."""
    handler = _handler(metrics_routes(metrics, store), asyncio.get_running_loop())
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        log.error(
            "metrics server could not listen on %s:%d (%s); set METRICS_PORT to a free port "
            "(0 picks one) or ENABLE_PROMETHEUS=false",
            host,
            port,
            exc,
        )
        return
    server.daemon_threads = True  # an idle keep-alive connection never holds up an exit
    thread = threading.Thread(target=server.serve_forever, name="arqd-metrics", daemon=True)
    thread.start()
    try:
        await stop.wait()
    finally:
        await asyncio.to_thread(server.shutdown)
        server.server_close()
