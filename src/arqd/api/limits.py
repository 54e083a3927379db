"""The request body limit, enforced before anything parses the body.

A declared Content-Length over the limit is refused at once; a body sent without one
(chunked) is counted as it streams in, and refused as soon as it crosses the limit.
"""

from __future__ import annotations

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arqd.api import problems


def _detail(limit: int) -> str:
    return f"the request body is over the limit of {limit} bytes (ARQD_MAX_BODY_BYTES)"


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimitMiddleware:
    """413 problem for bodies over ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            response = problems.problem(413, _detail(self.max_bytes), "body-too-large")
            await response(scope, receive, send)
            return
        if declared is not None:
            await self.app(scope, receive, send)  # the server stops reading at Content-Length
            return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                # fastapi.HTTPException: FastAPI re-raises it from body parsing unchanged.
                raise HTTPException(413, _detail(self.max_bytes))
            return message

        return counted
