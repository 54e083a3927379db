"""The dashboard, served by ``arqd serve`` under ``/ui``: server-side pages (Jinja2), a
small plain script and a style sheet shipped in the wheel, live over ``WS /ui/events``.

It is an app of its own that the API's key check lets through (``UiGate``): a browser signs in
once with an API key and then carries a signed session cookie, never the key. It reads
and acts through the client only, like the API.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Scope

from arqd.api.state import ApiState
from arqd.ui import actions, pages, schedules, signin, workflows
from arqd.ui.live import live
from arqd.ui.web import HERE, PREFIX, Ui

__all__ = ["ACTION_ROUTES", "ROUTES", "UiGate", "create_ui"]

# Every route that changes something: each refuses a request without the CSRF token.
ACTION_ROUTES: list[BaseRoute] = [
    Route(f"{PREFIX}/tasks/{{task_id}}/retry", actions.retry, methods=["POST"]),
    Route(f"{PREFIX}/tasks/{{task_id}}/run", actions.run_now, methods=["POST"]),
    Route(f"{PREFIX}/tasks/{{task_id}}/cancel", actions.cancel, methods=["POST"]),
    Route(f"{PREFIX}/tasks/{{task_id}}/copy", actions.copy, methods=["POST"]),
    Route(f"{PREFIX}/breakers/{{name}}/reset", actions.reset_breaker, methods=["POST"]),
    Route(f"{PREFIX}/queues/{{queue}}/bulk", actions.bulk_action, methods=["POST"]),
    Route(f"{PREFIX}/schedules/{{name}}/edit", schedules.edit, methods=["POST"]),
    Route(f"{PREFIX}/schedules/{{name}}/pause", schedules.pause, methods=["POST"]),
    Route(f"{PREFIX}/schedules/{{name}}/resume", schedules.resume, methods=["POST"]),
    Route(f"{PREFIX}/schedules/{{name}}/trigger", schedules.trigger, methods=["POST"]),
    Route(f"{PREFIX}/queues/{{queue}}/pause", actions.pause, methods=["POST"]),
    Route(f"{PREFIX}/queues/{{queue}}/resume", actions.resume, methods=["POST"]),
]
ROUTES: list[BaseRoute] = [
    Route(PREFIX, pages.overview),
    Route(f"{PREFIX}/", pages.overview),
    Route(f"{PREFIX}/login", signin.form),
    Route(f"{PREFIX}/login", signin.sign_in, methods=["POST"]),
    Route(f"{PREFIX}/logout", signin.sign_out, methods=["POST"]),
    Route(f"{PREFIX}/queues/{{queue}}", pages.queue),
    Route(f"{PREFIX}/find", pages.find),
    Route(f"{PREFIX}/tasks/{{task_id}}", pages.task),
    Route(f"{PREFIX}/workers", pages.workers),
    Route(f"{PREFIX}/breakers", pages.breakers),
    Route(f"{PREFIX}/audit", pages.audit),
    Route(f"{PREFIX}/schedules", schedules.schedules),
    Route(f"{PREFIX}/schedules/{{name}}", schedules.schedule),
    Route(f"{PREFIX}/workflows/{{workflow_id}}", workflows.workflow),
    *ACTION_ROUTES,
    WebSocketRoute(f"{PREFIX}/events", live),
    Mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="static"),
]


def create_ui(state: ApiState) -> Starlette:
    """The dashboard's app, sharing the API's state (and so its clients)."""
    app = Starlette(routes=ROUTES)
    app.state.ui = Ui(state)
    return app


class UiGate:
    """Which requests go to the dashboard, which signs its viewers in itself, rather than
    through the API's key check: ``/ui`` and everything under it, and a browser asking for
    ``/`` there (redirected). The API's key check asks it first (``ApiKeyMiddleware``'s
    ``bypass``): a function call per request, where a middleware of its own would wrap
    every API request in one more coroutine (bench.bench_api, CPU per POST /tasks)."""

    def __init__(self, ui: ASGIApp) -> None:
        self.ui = ui
        self.to_ui = RedirectResponse(PREFIX, 307)

    def __call__(self, scope: Scope) -> ASGIApp | None:
        path = scope.get("path", "")
        if path == PREFIX or path.startswith(PREFIX + "/"):
            return self.ui
        if path == "/" and scope["type"] == "http" and _browser(scope):
            return self.to_ui
        return None


def _browser(scope: Scope) -> bool:
    if scope["method"] not in ("GET", "HEAD"):
        return False
    accept = dict(scope["headers"]).get(b"accept", b"")
    return b"text/html" in accept
