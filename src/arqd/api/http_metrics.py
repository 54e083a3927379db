"""HTTP metrics as a pure ASGI middleware: one count and one duration per request,
labelled by the route template (never the raw URL, which would explode the series)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arqd.observability.metrics import Metrics

UNMATCHED = "<unmatched>"


class HttpMetrics:
    """Records ``arq_http_requests_total`` and ``arq_http_request_duration_seconds``."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            path = getattr(scope.get("route"), "path", None) or UNMATCHED
            method = scope["method"]
            self.metrics.http_requests.labels(method, path, str(status)).inc()
            self.metrics.http_duration.labels(method, path).observe(time.perf_counter() - started)
