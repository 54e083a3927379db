"""``POST /tasks`` and ``POST /tasks/batch`` without FastAPI's per-request machinery.

FastAPI's routing, dependency solving and body handling cost more than the rest of an
enqueue put together: the API's CPU per ``POST /tasks`` is about three times as high
without this lane (bench.bench_api; ``create_app(fast_lane=False)``). This ASGI layer
sits just inside the API key and body limit checks and answers a *valid* enqueue
itself: it parses and validates the body with the route's own pydantic model (in Rust, from
the raw bytes) and calls the route's own handler. Anything else, a body that is not declared
JSON or does not validate, goes on to the FastAPI route with its body, so every error answer
still comes from one place. The routes stay declared in FastAPI, which documents them, and
tests/e2e/test_api_fast_lane.py holds both paths to the same answers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arqd.api import problems
from arqd.api.routes.tasks import enqueue_many, enqueue_one
from arqd.api.schemas import BatchIn, TaskIn
from arqd.api.state import ApiState

log = logging.getLogger("arqd.api")

Handler = Callable[[ApiState, Any], Awaitable[Response]]
_ROUTES: dict[str, tuple[type[BaseModel], Handler]] = {
    "/tasks": (TaskIn, enqueue_one),
    "/tasks/batch": (BatchIn, enqueue_many),
}
_JSON_MEDIA = re.compile(rb"^application/([a-z0-9.+-]+\+)?json\s*(;|$)", re.I)


def _declares_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return _JSON_MEDIA.match(value) is not None
    return False


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that hands out ``body`` once, then whatever the client sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def enqueue_routes(routes: Iterable[BaseRoute]) -> dict[str, BaseRoute]:
    """The app's route objects for the paths the fast lane answers."""
    return {
        route.path: route
        for route in routes
        if isinstance(route, APIRoute) and route.path in _ROUTES and "POST" in (route.methods or ())
    }


class EnqueueFastLane:
    """Answers valid enqueue requests directly; passes everything else on to ``app``.

    ``routes`` are the FastAPI routes it stands in for: it puts them in the scope as the
    router would, so middleware outside (metrics labelled by route template) sees them."""

    def __init__(self, app: ASGIApp, state: ApiState, routes: dict[str, BaseRoute]) -> None:
        self.app = app
        self.state = state
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = _ROUTES.get(scope["path"]) if scope["type"] == "http" else None
        if route is None or scope["method"] != "POST" or not _declares_json(scope):
            await self.app(scope, receive, send)
            return
        model, handler = route
        scope["route"] = self.routes.get(scope["path"])
        try:
            body = await _read_body(receive)
        except Exception as exc:  # the body limit, counted as a chunked body streams in
            await self._answer_error(exc, scope, receive, send)
            return
        try:
            parsed = model.model_validate_json(body)
        except ValidationError:
            await self.app(scope, _replaying(body, receive), send)
            return
        try:
            response = await handler(self.state, parsed)
        except Exception as exc:
            await self._answer_error(exc, scope, receive, send)
            return
        await response(scope, receive, send)

    async def _answer_error(
        self, exc: Exception, scope: Scope, receive: Receive, send: Send
    ) -> None:
        response = problems.for_exception(exc)
        if response is None:
            log.error("enqueue failed", exc_info=exc)
            response = problems.problem(500, problems.INTERNAL_DETAIL, "internal")
        await response(scope, receive, send)
