"""The HTTP rate limit: ``REQUESTS_PER_MINUTE`` per API key, or per client address.

The budget is kept in Redis by the GCRA script every rate limit uses (see
``resilience/ratelimit.py``), so every API replica draws on the same one. The burst is the
per-minute count: a client that has been quiet may spend a minute's budget at once, then
gets one request every ``60 / REQUESTS_PER_MINUTE`` seconds. ``ARQD_RATE_LIMIT_OVERRIDES``
gives single keys a limit of their own; a limit of 0 means none.

This is ASGI middleware just inside the API key check, so the key is known and valid, and
outside the body limit and the routes, so a refused request's body is never read. A
WebSocket counts once, when it asks to connect. Probes and metrics are never limited.
When Redis cannot be asked, the answer is the 503 every route gives then: a limiter that
let requests through would pass them to routes that cannot serve them without Redis.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arqd.api import problems
from arqd.api.auth import presented_key
from arqd.api.batching import Batcher
from arqd.api.state import ApiState
from arqd.core.settings import Settings
from arqd.resilience.limiter import RateLimiter, Token

log = logging.getLogger("arqd.api")

EXEMPT_PATHS = frozenset({"/health", "/ready", "/metrics", "/metrics.json"})
MINUTE_MS = 60_000
MAX_BATCH = 500  # tokens taken in one script call
SCOPE = "http"  # the rate-limit scope of HTTP requests
_EVENT_PATH_MAX = 200  # characters of the path an event keeps


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    """Requests per minute for each client; 0 is no limit."""

    per_minute: int
    overrides: Mapping[bytes, int]  # by API key
    by_key: bool  # API keys are configured: limit per key, not per address

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimitPolicy:
        overrides = {key.encode(): count for key, count in settings.rate_limits().items()}
        return cls(settings.requests_per_minute, overrides, bool(settings.api_key_list()))

    @property
    def active(self) -> bool:
        """Does any client have a limit?"""
        return self.per_minute > 0 or any(self.overrides.values())

    def limit_for(self, key: bytes | None) -> int:
        return self.per_minute if key is None else self.overrides.get(key, self.per_minute)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer of the GCRA script for one request."""

    allowed: bool
    limit: int
    retry_after_ms: int
    remaining: int
    reset_ms: int

    @property
    def retry_after(self) -> int:
        """Whole seconds, rounded up: a client that waits this long gets a token."""
        return max(1, math.ceil(self.retry_after_ms / 1000))

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(math.ceil(self.reset_ms / 1000)),
        }


class RateLimitMiddleware:
    """429 problem with ``Retry-After`` over the limit; RateLimit headers on every answer.

    Requests that arrive together take their tokens in one script call (see batching.py):
    one round trip per request would cost more than the enqueue it guards."""

    def __init__(self, app: ASGIApp, state: ApiState, policy: RateLimitPolicy) -> None:
        self.app = app
        self.state = state
        self.policy = policy
        self.tokens: Batcher[tuple[str, float, int], Token] = Batcher(self._take_tokens, MAX_BATCH)
        self._limiter: RateLimiter | None = None

    @property
    def limiter(self) -> RateLimiter:
        if self._limiter is None:  # the client is attached when the app starts
            self._limiter = self.state.client.rate_limiter(SCOPE)
        return self._limiter

    async def _take_tokens(self, wanted: list[tuple[str, float, int]]) -> list[Token]:
        return await self.limiter.take(wanted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        key = presented_key(scope) if self.policy.by_key else None
        limit = self.policy.limit_for(key)
        if limit <= 0:
            await self.app(scope, receive, send)
            return
        try:
            verdict = await self._take(scope, key, limit)
        except problems.UNAVAILABLE:
            await _answer(scope, receive, send, problems.unavailable(), "Redis is unreachable")
            return
        if not verdict.allowed:
            await self._refuse(scope, receive, send, key, verdict)
        elif scope["type"] == "http":
            await self.app(scope, receive, _adding(verdict.headers(), send))
        else:
            await self.app(scope, receive, send)

    async def _take(self, scope: Scope, key: bytes | None, limit: int) -> Verdict:
        subject = http_subject(key, _address(scope))
        token = await self.tokens.submit((subject, MINUTE_MS / limit, limit))
        return Verdict(token.allowed, limit, token.retry_after_ms, token.remaining, token.reset_ms)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, key: bytes | None, verdict: Verdict
    ) -> None:
        if self.state.metrics is not None:
            self.state.metrics.rate_limited.labels(SCOPE).inc()
        await self._note(scope, key, verdict)
        headers = {"Retry-After": str(verdict.retry_after), **verdict.headers()}
        detail = (
            f"over the limit of {verdict.limit} requests per minute; "
            f"retry after {verdict.retry_after} s"
        )
        response = problems.problem(429, detail, "rate-limited", headers=headers)
        await _answer(scope, receive, send, response, "rate limited")

    async def _note(self, scope: Scope, key: bytes | None, verdict: Verdict) -> None:
        """The refusal as an event; losing one is better than failing the answer."""
        fields: dict[str, str | int] = {
            "client": http_subject(key, _address(scope)),
            "method": scope.get("method", "WEBSOCKET"),
            "path": scope["path"][:_EVENT_PATH_MAX],
            "limit": verdict.limit,
            "retry_after_ms": verdict.retry_after_ms,
        }
        try:
            await self.limiter.note_refused(fields)
        except problems.UNAVAILABLE:
            log.warning("a rate-limit refusal could not be recorded: Redis is unreachable")


def http_subject(api_key: bytes | None, address: str | None) -> str:
    """Whom the HTTP rate limit counts: an API key's SHA-256 (the key itself never goes
    into Redis), or the client's address when there is no key."""
    if api_key is not None:
        return "key:" + hashlib.sha256(api_key).hexdigest()
    return f"addr:{address or 'unknown'}"


def _address(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def _adding(headers: dict[str, str], send: Send) -> Send:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *raw]
        await send(message)

    return send_with_headers


async def _answer(
    scope: Scope, receive: Receive, send: Send, response: Response, reason: str
) -> None:
    if scope["type"] == "http":
        await response(scope, receive, send)
    else:  # 1013: try again later
        await problems.refuse_websocket(scope, receive, send, response, 1013, reason)
