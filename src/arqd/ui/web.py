"""What every dashboard route shares: the viewer behind a request, rendering, the gate
that signs in and checks CSRF before an action runs, and error pages."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import orjson
from starlette.requests import HTTPConnection, Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from arqd.api import problems
from arqd.api.state import ApiState
from arqd.client import Client
from arqd.core.errors import (
    BreakerNotFound,
    InvalidTask,
    InvalidTransition,
    ScheduleNotFound,
    TaskNotFound,
    WorkflowNotFound,
)
from arqd.ui.session import Session, Sessions

HERE = Path(__file__).parent
PREFIX = "/ui"
COOKIE = "arqd_session"
MAX_FORM_BYTES = 1_048_576
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
STATUS_MARKS = {
    "scheduled": "◷",
    "queued": "◌",
    "active": "▶",
    "succeeded": "✓",
    "failed": "✕",
    "cancelled": "⊘",
    "expired": "⊖",
    "paused": "‖",
    "running": "▶",
    "closed": "✓",
    "open": "✕",
    "half_open": "◐",
}


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking: their session, and what it lets them do."""

    session: Session
    signed_in: bool
    read_only: bool
    csrf: str
    actor: str
    fresh: bool  # the session is new: the response sets its cookie


class Ui:
    """The dashboard's shared parts, held in the UI app's ``state.ui``."""

    def __init__(self, state: ApiState) -> None:
        settings = state.settings
        secret = settings.ui_secret.encode() if settings.ui_secret else secrets.token_bytes(32)
        self.state = state
        self.sessions = Sessions(secret, settings.api_key_list(), settings.read_only_key_list())
        self.templates = Jinja2Templates(directory=HERE / "templates")
        env = self.templates.env
        env.filters["pretty"] = pretty
        env.filters["iso"] = iso
        env.filters["age"] = age
        env.globals["marks"] = STATUS_MARKS

    @property
    def client(self) -> Client:
        return self.state.client

    def viewer(self, connection: HTTPConnection) -> Viewer:
        session = self.sessions.decode(connection.cookies.get(COOKIE))
        fresh = session is None
        session = session or self.sessions.new()
        return self.viewer_of(session, fresh)

    def viewer_of(self, session: Session, fresh: bool) -> Viewer:
        sessions = self.sessions
        return Viewer(
            session=session,
            signed_in=sessions.signed_in(session),
            read_only=sessions.read_only(session),
            csrf=sessions.csrf(session),
            actor=sessions.actor(session),
            fresh=fresh,
        )

    def render(
        self,
        request: Request,
        viewer: Viewer,
        template: str,
        context: dict[str, Any],
        status: int = 200,
    ) -> Response:
        page = {"viewer": viewer, "open": self.sessions.open, "path": request.url.path}
        response = self.templates.TemplateResponse(
            request, template, {**page, **context}, status_code=status
        )
        return self.finish(request, viewer, response)

    def fragment(self, template: str, viewer: Viewer, context: dict[str, Any]) -> str:
        """A part of a page, rendered on its own (a live page's table)."""
        return self.templates.get_template(template).render({"viewer": viewer, **context})

    def finish(self, request: Request, viewer: Viewer, response: Response) -> Response:
        """Add the security headers, and the session cookie when it is new."""
        response.headers.update(SECURITY_HEADERS)
        if viewer.fresh:
            self.set_session(request, response, viewer.session)
        return response

    def set_session(self, request: Request, response: Response, session: Session) -> None:
        response.set_cookie(
            COOKIE,
            self.sessions.encode(session),
            max_age=self.sessions.ttl,
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    def refuse(self, request: Request, viewer: Viewer, status: int, message: str) -> Response:
        return self.render(request, viewer, "error.html", {"message": message}, status)


Page = Callable[[Request, Ui, Viewer], Awaitable[Response]]
Action = Callable[[Request, Ui, Viewer, dict[str, str]], Awaitable[Response]]


def ui_of(connection: HTTPConnection) -> Ui:
    ui: Ui = connection.app.state.ui
    return ui


def page(handler: Page) -> Callable[[Request], Awaitable[Response]]:
    """A page: signed-in viewers only (the others go to the sign-in form)."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        ui = ui_of(request)
        viewer = ui.viewer(request)
        if not viewer.signed_in:
            target = quote(
                request.url.path + (f"?{request.url.query}" if request.url.query else "")
            )
            return ui.finish(request, viewer, RedirectResponse(f"/ui/login?next={target}", 303))
        return await guarded(request, ui, viewer, handler(request, ui, viewer))

    return endpoint


def action(
    handler: Action, *, signed_out: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    """An action (a POST): refused with 403 unless it comes from a dashboard page of this
    origin with the session's CSRF token, from a viewer allowed to act (``signed_out``:
    signing in, where no one is signed in yet)."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        ui = ui_of(request)
        viewer = ui.viewer(request)
        form = await read_form(request)
        if form is None:
            return ui.refuse(request, viewer, 413, "The form is too large.")
        if (
            not same_origin(request)
            or viewer.fresh
            or not ui.sessions.csrf_ok(viewer.session, form.get("csrf"))
        ):
            return ui.refuse(
                request,
                viewer,
                403,
                "Refused: the form's CSRF token is missing "
                "or wrong. Reload the page and try again.",
            )
        if not signed_out and not viewer.signed_in:
            return ui.refuse(request, viewer, 403, "Refused: sign in first.")
        if not signed_out and viewer.read_only:
            return ui.refuse(request, viewer, 403, "Refused: this key is read-only.")
        return await guarded(request, ui, viewer, handler(request, ui, viewer, form))

    return endpoint


async def guarded(request: Request, ui: Ui, viewer: Viewer, work: Awaitable[Response]) -> Response:
    """Run a route, turning what can go wrong into a page a person can act on."""
    try:
        return ui.finish(request, viewer, await work)
    except TaskNotFound:
        return ui.refuse(request, viewer, 404, "No such task: it never existed, or it expired.")
    except BreakerNotFound as exc:
        return ui.refuse(request, viewer, 404, f"No such breaker: {exc}")
    except ScheduleNotFound as exc:
        return ui.refuse(request, viewer, 404, f"No such schedule: {exc}")
    except WorkflowNotFound as exc:
        return ui.refuse(request, viewer, 404, f"No such workflow: {exc}")
    except (InvalidTask, InvalidTransition) as exc:
        return ui.refuse(request, viewer, 409, str(exc))
    except problems.UNAVAILABLE:
        return ui.refuse(request, viewer, 503, "Redis is unreachable; try again shortly.")


async def read_form(request: Request) -> dict[str, str] | None:
    """A url-encoded form's fields (the first of each name), or None when too large."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    return dict(reversed(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)))


def same_origin(connection: HTTPConnection) -> bool:
    """No Origin (or Referer) header, or one naming this very host and port."""
    origin = connection.headers.get("origin") or connection.headers.get("referer")
    if origin is None:
        return True
    host = connection.headers.get("host", "")
    return urlsplit(origin).netloc == host


def pretty(value: Any) -> str:
    """JSON for a person to read."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()


def iso(value: datetime | float | None) -> str:
    if value is None:
        return ""
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def age(seconds: float | None) -> str:
    """``3 s``, ``4 min``, ``2 h``, ``5 d``; an em dash for none."""
    if seconds is None:
        return "—"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"
