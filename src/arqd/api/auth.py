"""API keys: every HTTP route and the WebSocket need one, except the public paths.

The check is ASGI middleware in front of the whole app rather than a dependency on each
router, so no route can be added without it: the docs, the WebSocket and paths that do not
exist are all behind it. A key comes as ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``;
a WebSocket may also pass ``?api_key=KEY`` (browsers cannot set headers on one).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from arqd.api import problems

log = logging.getLogger("arqd.api")

DEFAULT_PUBLIC_PATHS = frozenset({"/health"})
_DETAIL = "a valid API key is required: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"


class ApiKeys:
    """The configured keys; empty means the API is open."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys = [key.encode() for key in keys]

    @property
    def open(self) -> bool:
        return not self._keys

    def accepts(self, candidate: bytes | None) -> bool:
        """Constant-time: every key is compared, whatever matches first."""
        if candidate is None:
            return False
        found = False
        for key in self._keys:
            found |= hmac.compare_digest(key, candidate)
        return found


def presented_key(scope: Scope) -> bytes | None:
    """The key a request presents, from its headers or (WebSocket only) its query."""
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            return bytes(value.strip())
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() == b"bearer":
                return bytes(token.strip())
    if scope["type"] == "websocket":
        query: str = scope.get("query_string", b"").decode("latin-1")
        for name, text in parse_qsl(query):
            if name == "api_key":
                return text.encode()
    return None


class ApiKeyMiddleware:
    """Refuses requests without a valid key: 401 problem (WebSocket: before the handshake)."""

    def __init__(
        self, app: ASGIApp, keys: ApiKeys, public_paths: frozenset[str] = DEFAULT_PUBLIC_PATHS
    ) -> None:
        self.app = app
        self.keys = keys
        self.public_paths = public_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] not in ("http", "websocket")
            or self.keys.open
            or scope["path"] in self.public_paths
            or self.keys.accepts(presented_key(scope))
        ):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http":
            response = problems.problem(
                401, _DETAIL, "unauthorized", headers={"WWW-Authenticate": "Bearer"}
            )
            await response(scope, receive, send)
        else:
            response = problems.problem(401, _DETAIL + " (or ?api_key=KEY)", "unauthorized")
            await problems.refuse_websocket(
                scope, receive, send, response, 1008, "API key required"
            )
