"""Every error the API returns is an RFC 9457 problem (``application/problem+json``).

One table maps arqd's errors to HTTP statuses; FastAPI's own errors (validation, 404,
405) and Redis being unreachable go through the same renderer, so a caller in any
language parses one shape: ``type``, ``title``, ``status``, ``detail``, and for 422 an
``errors`` list naming each bad field.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextvars import ContextVar
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from redis import exceptions as redis_errors
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from arqd.core.errors import (
    ArqdError,
    BreakerNotFound,
    InvalidSchedule,
    InvalidTask,
    InvalidTransition,
    PayloadTooLarge,
    ReplicasBehind,
    ScheduleNotFound,
    TaskNotFound,
    TaskWaitTimeout,
    WorkflowNotFound,
)

MEDIA_TYPE = "application/problem+json"
INTERNAL_DETAIL = "internal error; the server log has the details"
RETRY_AFTER_SECONDS = "1"

# Most specific first: the first class an error is an instance of decides.
_ARQD_STATUS: tuple[tuple[type[ArqdError], int, str], ...] = (
    (TaskNotFound, 404, "task-not-found"),
    (BreakerNotFound, 404, "breaker-not-found"),
    (ScheduleNotFound, 404, "schedule-not-found"),
    (WorkflowNotFound, 404, "workflow-not-found"),
    (InvalidSchedule, 422, "invalid-schedule"),
    (PayloadTooLarge, 413, "payload-too-large"),
    (InvalidTask, 422, "invalid-task"),
    (InvalidTransition, 409, "invalid-transition"),
    (TaskWaitTimeout, 504, "wait-timeout"),
)

# Errors that mean "Redis is not there right now", not "the request is wrong".
UNAVAILABLE: tuple[type[Exception], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    redis_errors.TryAgainError,
    redis_errors.ClusterDownError,
    redis_errors.MasterDownError,
    redis_errors.AskError,  # and MOVED: a cluster's slot still on its way after resends
    redis_errors.SlotNotCoveredError,  # a cluster master lost, its replica not yet promoted
    OSError,
)


def problem(
    status: int,
    detail: str,
    slug: str | None = None,
    errors: Sequence[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A problem+json response; ``slug`` names the problem type (default: the status)."""
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": f"urn:arqd:problem:{slug}" if slug else "about:blank",
        "title": phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = list(errors)
    return Response(orjson.dumps(body), status, headers=headers, media_type=MEDIA_TYPE)


def unavailable(detail: str = "Redis is unreachable; try again shortly") -> Response:
    """503 with Retry-After: the request was fine, the backing store is not there."""
    headers = {"Retry-After": RETRY_AFTER_SECONDS}
    return problem(503, detail, "redis-unavailable", headers=headers)


async def refuse_websocket(
    scope: Scope, receive: Receive, send: Send, response: Response, close_code: int, reason: str
) -> None:
    """Refuse a WebSocket before its handshake: with ``response`` where the server can send
    one (an HTTP answer to the upgrade), else by closing with ``close_code``."""
    await receive()  # websocket.connect
    if "websocket.http.response" in scope.get("extensions", {}):
        start = {"status": response.status_code, "headers": response.raw_headers}
        await send({"type": "websocket.http.response.start", **start})
        await send({"type": "websocket.http.response.body", "body": response.body})
        _ANSWERED_OVER_HTTP.set(True)
    else:
        await send({"type": "websocket.close", "code": close_code, "reason": reason})


_ANSWERED_OVER_HTTP: ContextVar[bool] = ContextVar("arqd_ws_answered_over_http", default=False)
_FALSE_HANDSHAKE_ERROR = "ASGI callable returned without completing handshake"


class _RefusalIsNotAnError(logging.Filter):
    """uvicorn's websockets-sansio protocol logs "ASGI callable returned without completing
    handshake" at ERROR after an app answers an upgrade with an HTTP response (the ASGI
    denial-response extension it offers), though the client got that answer whole. The
    line is dropped for the WebSockets arqd refused so: it runs in the same task as the
    app, so it sees the flag ``refuse_websocket`` set."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            _ANSWERED_OVER_HTTP.get() and str(record.msg).startswith(_FALSE_HANDSHAKE_ERROR)
        )


_REFUSAL_FILTER = _RefusalIsNotAnError()


def quiet_refused_websockets() -> None:
    """Install the filter on uvicorn's error logger (once per process)."""
    logging.getLogger("uvicorn.error").addFilter(_REFUSAL_FILTER)  # a set: no duplicates


def field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic error dicts as ``{"field": "body.tasks.0.type", "message", "type"}``."""
    return [
        {
            "field": ".".join(str(part) for part in error.get("loc", ())),
            "message": str(error.get("msg", "invalid")),
            "type": str(error.get("type", "value_error")),
        }
        for error in errors
    ]


def from_arqd_error(exc: ArqdError) -> Response:
    if isinstance(exc, ReplicasBehind):  # the request was fine: try again shortly
        headers = {"Retry-After": RETRY_AFTER_SECONDS}
        return problem(503, str(exc), "replicas-behind", headers=headers)
    for cls, status, slug in _ARQD_STATUS:
        if isinstance(exc, cls):
            return problem(status, str(exc), slug)
    return problem(500, INTERNAL_DETAIL, "internal")


def from_validation_error(errors: Sequence[Any]) -> Response:
    if any(error.get("type") == "json_invalid" for error in errors):
        return problem(400, "the request body is not valid JSON", "invalid-json")
    return problem(
        422, "the request has invalid fields; see errors", "invalid-request", field_errors(errors)
    )


def from_http_exception(exc: HTTPException) -> Response:
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=headers)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return problem(exc.status_code, detail, headers=headers)


def for_exception(exc: Exception) -> Response | None:
    """The problem for an error a request can meet, or None for a bug (a 500)."""
    if isinstance(exc, ArqdError):
        return from_arqd_error(exc)
    if isinstance(exc, HTTPException):
        return from_http_exception(exc)
    if isinstance(exc, UNAVAILABLE):
        return unavailable()
    return None


async def _arqd_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ArqdError)
    return from_arqd_error(exc)


async def _validation_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return from_validation_error(exc.errors())


async def _websocket_validation_handler(websocket: WebSocket, exc: Exception) -> None:
    # Refused before the handshake, so the client sees a status and a reason, not a bare 403.
    assert isinstance(exc, WebSocketRequestValidationError)
    await websocket.send_denial_response(from_validation_error(exc.errors()))


async def _http_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return from_http_exception(exc)


async def _unavailable_handler(request: Request, exc: Exception) -> Response:
    return unavailable()


async def _internal_handler(request: Request, exc: Exception) -> Response:
    return problem(500, INTERNAL_DETAIL, "internal")


def install(app: FastAPI) -> None:
    """Route every error the app can raise through the problem renderer."""
    app.add_exception_handler(ArqdError, _arqd_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(WebSocketRequestValidationError, _websocket_validation_handler)
    app.add_exception_handler(HTTPException, _http_handler)
    for cls in UNAVAILABLE:
        app.add_exception_handler(cls, _unavailable_handler)
    app.add_exception_handler(Exception, _internal_handler)
