"""Signing in with an API key (once: the session cookie remembers it) and out."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from arqd.ui.web import COOKIE, PREFIX, Ui, Viewer, action, ui_of


def _next(target: str | None) -> str:
    """Only a dashboard path: never another site (an open redirect)."""
    if target and (target == PREFIX or target.startswith((f"{PREFIX}/", f"{PREFIX}?"))):
        return target
    return PREFIX


async def form(request: Request) -> Response:
    ui = ui_of(request)
    viewer = ui.viewer(request)
    if viewer.signed_in:
        return ui.finish(
            request, viewer, RedirectResponse(_next(request.query_params.get("next")), 303)
        )
    context = {"next": _next(request.query_params.get("next")), "error": None}
    return ui.render(request, viewer, "login.html", context)


async def _sign_in(request: Request, ui: Ui, viewer: Viewer, fields: dict[str, str]) -> Response:
    session = ui.sessions.sign_in(fields.get("key", ""))
    target = _next(fields.get("next"))
    if session is None:
        context = {"next": target, "error": "That key is not one of the configured API keys."}
        return ui.render(request, viewer, "login.html", context, 401)
    response = RedirectResponse(target, 303)
    ui.set_session(request, response, session)  # a new nonce: a new CSRF token
    return response


async def _sign_out(request: Request, ui: Ui, viewer: Viewer, fields: dict[str, str]) -> Response:
    response = RedirectResponse(f"{PREFIX}/login", 303)
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")
    return response


sign_in = action(_sign_in, signed_out=True)
sign_out = action(_sign_out, signed_out=True)
