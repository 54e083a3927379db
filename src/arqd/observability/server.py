"""A worker process's own small HTTP server: /metrics, /metrics.json and /health.

Three GET routes do not need a web framework: a plain ``asyncio`` server answers them
(HTTP/1.1, keep-alive), so a worker does not load uvicorn and Starlette (~4 MB of RSS).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import orjson

from arqd.observability.export import TEXT_CONTENT_TYPE, as_json, as_text, refreshed
from arqd.observability.metrics import Metrics
from arqd.store.store import Store

log = logging.getLogger("arqd.metrics")
Route = Callable[[], Awaitable[tuple[bytes, str]]]
MAX_HEAD = 16 * 1024  # bytes of request line and headers accepted
IDLE = 30.0  # seconds a keep-alive connection may wait for its next request
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


def metrics_routes(metrics: Metrics, store: Store) -> dict[str, Route]:
    async def text() -> tuple[bytes, str]:
        return as_text(await refreshed(metrics, store)), TEXT_CONTENT_TYPE

    async def json() -> tuple[bytes, str]:
        return orjson.dumps(as_json(await refreshed(metrics, store))), "application/json"

    async def health() -> tuple[bytes, str]:
        return b'{"status":"ok"}', "application/json"  # the process answers: it is alive

    return {"/metrics": text, "/metrics.json": json, "/health": health}


def _response(status: int, body: bytes, content_type: str, keep_alive: bool) -> bytes:
    head = (
        f"HTTP/1.1 {status} {REASONS[status]}\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\nconnection: {'keep-alive' if keep_alive else 'close'}"
        "\r\n\r\n"
    )
    return head.encode() + body


async def _answer(routes: dict[str, Route], head: bytes) -> tuple[int, bytes, str, bool]:
    """(status, body, content type, keep alive) for one request head."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return 400, b"bad request\n", "text/plain", False
    method, target, version = parts
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    if headers.get("content-length", "0") != "0" or "transfer-encoding" in headers:
        return 400, b"requests with a body are not served\n", "text/plain", False
    route = routes.get(target.partition("?")[0])
    if route is None:
        return 404, b"not found\n", "text/plain", keep_alive
    if method not in ("GET", "HEAD"):
        return 405, b"method not allowed\n", "text/plain", keep_alive
    body, content_type = await route()
    return 200, b"" if method == "HEAD" else body, content_type, keep_alive


async def _serve_connection(
    routes: dict[str, Route], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        keep_alive = True
        while keep_alive:
            async with asyncio.timeout(IDLE):
                head = await reader.readuntil(b"\r\n\r\n")
            status, body, content_type, keep_alive = await _answer(routes, head[:-4])
            writer.write(_response(status, body, content_type, keep_alive))
            await writer.drain()
    except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
        pass  # the client went away, idled, or sent more than a request head
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def serve_metrics(
    metrics: Metrics, store: Store, host: str, port: int, stop: asyncio.Event
) -> None:
    """Serve until ``stop`` is set. A port that cannot be bound is logged, not fatal."""
    routes = metrics_routes(metrics, store)
    connections: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.add(writer)
        try:
            await _serve_connection(routes, reader, writer)
        finally:
            connections.discard(writer)

    try:
        server = await asyncio.start_server(handle, host, port, limit=MAX_HEAD)
    except OSError as exc:
        log.error(
            "metrics server could not listen on %s:%d (%s); set METRICS_PORT to a free port "
            "(0 picks one) or ENABLE_PROMETHEUS=false",
            host,
            port,
            exc,
        )
        return
    try:
        await stop.wait()
    finally:
        server.close()
        for writer in list(connections):  # idle keep-alive connections end now
            writer.close()
        await server.wait_closed()
