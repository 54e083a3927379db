"""HTTP metrics as a pure ASGI middleware: one count and one duration per request,
labelled by the route template (never the raw URL, which would explode the series).

A request refused before the router saw it (401, 413, 429, 503 overloaded: the middleware
inside this one answers those) has no route in its scope; it is matched against the app's
routes here, once, so the refusal is counted under its route template too. Only a path
that no route serves is counted as ``<unmatched>``. Requests the API's routes serve never
pay for that matching: the router has put their route in the scope. (FastAPI does so for
its own routes only: ``/openapi.json`` and the docs' assets are matched here too.)

A long poll (``GET /tasks/{id}?wait=S`` that had to wait for its task) spends its time
waiting, not answering: its duration goes to ``arq_http_long_poll_duration_seconds``, so
``arq_http_request_duration_seconds`` (and the p95 alert on it) measures answers only.
The route marks such a request with ``LONG_POLL`` in its scope.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arqd.observability.metrics import Metrics

UNMATCHED = "<unmatched>"
LONG_POLL = "arqd.long_poll"  # scope key: this request waited for its answer


class HttpMetrics:
    """Records ``arq_http_requests_total`` and ``arq_http_request_duration_seconds`` (or
    ``arq_http_long_poll_duration_seconds``); ``routes`` are the app's routes, flat."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Iterable[BaseRoute] = ()) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = [route for route in routes if isinstance(route, Route | Mount)]

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
            path = getattr(scope.get("route"), "path", None) or self.template(scope)
            method = scope["method"]
            metrics = self.metrics
            metrics.http_requests_of(method, path, str(status)).inc()
            seconds = time.perf_counter() - started
            if scope.get(LONG_POLL):
                metrics.http_long_poll_of(method, path).observe(seconds)
            else:
                metrics.http_duration_of(method, path).observe(seconds)

    def template(self, scope: Scope) -> str:
        """The template of the route the router would have chosen for a request answered
        before it: the first full match, else the first route of the path (another
        method: a 405), else ``UNMATCHED``."""
        other_method = UNMATCHED
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return route.path
            if match is Match.PARTIAL and other_method == UNMATCHED:
                other_method = route.path
        return other_method
