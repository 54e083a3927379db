"""API keys: every HTTP route and the WebSocket need one, except the public paths.

The check is ASGI middleware in front of the whole app rather than a dependency on each
router, so no route can be added without it: the docs, the WebSocket and paths that do not
exist are all behind it. A key comes as ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``;
a WebSocket may also pass ``?api_key=KEY`` (browsers cannot set headers on one). Wrong keys
are bounded per client address (see auth_failures.py).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from arqd.api import problems
from arqd.api.auth_failures import SCOPE as AUTH_SCOPE
from arqd.api.auth_failures import AuthFailureLimit, Refusal
from arqd.observability.metrics import Metrics

log = logging.getLogger("arqd.api")

DEFAULT_PUBLIC_PATHS = frozenset({"/health"})
_DETAIL = "a valid API key is required: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"
_READ_ONLY = "this API key is read-only (ARQD_READ_ONLY_KEYS): it may read, not change anything"


READS = frozenset({"GET", "HEAD", "OPTIONS"})  # what a read-only key may send


class ApiKeys:
    """The configured keys; empty means the API is open. ``read_only`` keys (among them)
    may read but not change anything."""

    def __init__(self, keys: Iterable[str], read_only: Iterable[str] = ()) -> None:
        self._keys = [key.encode() for key in keys]
        self._read_only = [key.encode() for key in read_only]

    @property
    def open(self) -> bool:
        return not self._keys

    def accepts(self, candidate: bytes | None) -> bool:
        if candidate is None:
            return False
        return _among(candidate, self._keys)

    def may_change(self, candidate: bytes | None, scope: Scope) -> bool:
        """Whether the (accepted) key may make this request: any read, or a change by a
        key that is not read-only."""
        if not self._read_only or scope["type"] != "http" or scope["method"] in READS:
            return True
        return candidate is None or not _among(candidate, self._read_only)


def _among(candidate: bytes, keys: list[bytes]) -> bool:
    """Constant-time: every key is compared, whatever matches first."""
    found = False
    for key in keys:
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
    """Refuses requests without a valid key: 401 problem (WebSocket: before the handshake);
    with ``failures``, 429 for an address that sent too many wrong keys."""

    def __init__(
        self,
        app: ASGIApp,
        keys: ApiKeys,
        public_paths: frozenset[str] = DEFAULT_PUBLIC_PATHS,
        failures: AuthFailureLimit | None = None,
        metrics: Metrics | None = None,
        bypass: Callable[[Scope], ASGIApp | None] | None = None,
    ) -> None:
        self.app = app
        self.keys = keys
        self.public_paths = public_paths
        self.failures = failures
        self.metrics = metrics
        self.bypass = bypass  # the app that answers a request instead, if any (the dashboard)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.bypass is not None and (other := self.bypass(scope)) is not None:
            await other(scope, receive, send)
            return
        if (
            scope["type"] not in ("http", "websocket")
            or self.keys.open
            or scope["path"] in self.public_paths
        ):
            await self.app(scope, receive, send)
            return
        failures = self.failures
        if failures is not None and failures.watching():
            refusal = await failures.before_compare(scope)
            if refusal is not None:
                await self._too_many(scope, receive, send, refusal)
                return
        key = presented_key(scope)
        if self.keys.accepts(key):
            if not self.keys.may_change(key, scope):
                await problems.problem(403, _READ_ONLY, "read-only-key")(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        if key is not None and failures is not None:
            refusal = await failures.failed(scope)
            if refusal is not None:
                await self._too_many(scope, receive, send, refusal)
                return
        await self._unauthorized(scope, receive, send)

    async def _unauthorized(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.metrics is not None:
            self.metrics.auth_failures.inc()
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

    async def _too_many(self, scope: Scope, receive: Receive, send: Send, refusal: Refusal) -> None:
        if self.metrics is not None:
            self.metrics.rate_limited.labels(AUTH_SCOPE).inc()
        detail = (
            "too many wrong API keys from this address (ARQD_AUTH_FAILURES_PER_MINUTE); "
            f"every request from it is refused for {refusal.retry_after} s"
        )
        headers = {"Retry-After": str(refusal.retry_after)}
        response = problems.problem(429, detail, "too-many-wrong-keys", headers=headers)
        if scope["type"] == "http":
            await response(scope, receive, send)
        else:  # 1013: try again later
            await problems.refuse_websocket(
                scope, receive, send, response, 1013, "too many wrong API keys"
            )
