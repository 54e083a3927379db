"""A request refused before routing is labelled with the route template the router would
have chosen for it: ``HttpMetrics.template`` is held to the app's own router."""

from __future__ import annotations

import asyncio
import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.routing import BaseRoute, Route
from starlette.types import Message, Scope

from arqd.api.app import create_app, served_routes
from arqd.api.http_metrics import UNMATCHED, HttpMetrics
from arqd.core.settings import Settings
from arqd.observability.metrics import Metrics

APP = create_app(Settings(redis_url="redis://127.0.0.1:1"))  # never started: no Redis
ROUTES = served_routes(APP)
METRICS = HttpMetrics(APP, Metrics(), ROUTES)

WORDS = ["tasks", "batch", "retry", "breakers", "reset", "queues", "workers", "health"]
WORDS += ["ready", "metrics", "metrics.json", "docs", "assets", "openapi.json", "events"]
WORDS += ["swagger-ui.css", "system"]
SEGMENT = st.sampled_from(WORDS) | st.text("abc123-_.", min_size=1, max_size=6)
PATH = st.lists(SEGMENT, max_size=4).map(lambda parts: "/" + "/".join(parts))
METHOD = st.sampled_from(["GET", "POST", "DELETE", "PUT", "HEAD", "PATCH"])


def request(method: str, path: str) -> Scope:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [],
    }


def routed_by_the_app(method: str, path: str) -> str:
    """The template of the route the app's router picks. The router puts it in the scope
    (FastAPI's own routes as ``route``, plain Starlette ones by their ``endpoint``) before
    calling it; the call then fails here or not, as the app has not started."""
    scope = request(method, path)
    messages: list[Message] = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        pass

    async def route() -> None:
        with contextlib.suppress(Exception):
            await APP.router(scope, receive, send)

    asyncio.run(route())
    chosen = scope.get("route")
    if chosen is None and "endpoint" in scope:
        chosen = next(r for r in ROUTES if _endpoint(r) is scope["endpoint"])
    return getattr(chosen, "path", None) or UNMATCHED


def _endpoint(route: BaseRoute) -> object:
    return route.endpoint if isinstance(route, Route) else getattr(route, "app", None)


@settings(max_examples=300, deadline=None)
@given(METHOD, PATH)
def test_a_refusal_gets_the_template_the_router_would_choose(method: str, path: str) -> None:
    assert METRICS.template(request(method, path)) == routed_by_the_app(method, path)


def test_the_examples_that_matter() -> None:
    for method, path, template in [
        ("GET", "/tasks/abc", "/tasks/{task_id}"),
        ("POST", "/tasks/batch", "/tasks/batch"),
        ("GET", "/tasks/batch", "/tasks/{task_id}"),
        ("PUT", "/tasks/abc", "/tasks/{task_id}"),  # a 405: the path's route
        ("POST", "/tasks/abc/retry", "/tasks/{task_id}/retry"),
        ("GET", "/no-such-route", UNMATCHED),
        ("GET", "/openapi.json", "/openapi.json"),
        ("GET", "/docs/assets/no-such-file", "/docs/assets"),
        ("GET", "/docs/assets/swagger-ui.css", "/docs/assets"),
    ]:
        assert METRICS.template(request(method, path)) == template, (method, path)
        assert routed_by_the_app(method, path) == template, (method, path)
