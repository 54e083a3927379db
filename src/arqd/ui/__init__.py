"""The dashboard, served by ``arqd serve`` under ``/ui``: server-side pages (Jinja2), a
small plain script and a style sheet shipped in the wheel, live over ``WS /ui/events``.

It is an app of its own in front of the API's key check (``UiGate``): a browser signs in
once with an API key and then carries a signed session cookie, never the key. It reads
and acts through the client only, like the API.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from arqd.api.state import ApiState
from arqd.ui import actions, pages, signin
from arqd.ui.live import live
from arqd.ui.web import HERE, PREFIX, Ui

__all__ = ["ACTION_ROUTES", "ROUTES", "UiGate", "create_ui"]

# Every route that changes something: each refuses a request without the CSRF token.
ACTION_ROUTES: list[BaseRoute] = [
    Route(f"{PREFIX}/tasks/{{task_id}}/retry", actions.retry, methods=["POST"]),
    Route(f"{PREFIX}/tasks/{{task_id}}/cancel", actions.cancel, methods=["POST"]),
    Route(f"{PREFIX}/tasks/{{task_id}}/copy", actions.copy, methods=["POST"]),
    Route(f"{PREFIX}/breakers/{{name}}/reset", actions.reset_breaker, methods=["POST"]),
    Route(f"{PREFIX}/queues/{{queue}}/bulk", actions.bulk_action, methods=["POST"]),
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
    """Sends ``/ui`` and everything under it to the dashboard, which signs its viewers in
    itself, and a browser asking for ``/`` there; everything else goes on to the API."""

    def __init__(self, app: ASGIApp, ui: ASGIApp) -> None:
        self.app = app
        self.ui = ui

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] in ("http", "websocket") and (
            path == PREFIX or path.startswith(PREFIX + "/")
        ):
            await self.ui(scope, receive, send)
        elif scope["type"] == "http" and path == "/" and _browser(scope):
            await RedirectResponse(PREFIX, 307)(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _browser(scope: Scope) -> bool:
    if scope["method"] not in ("GET", "HEAD"):
        return False
    accept = dict(scope["headers"]).get(b"accept", b"")
    return b"text/html" in accept
