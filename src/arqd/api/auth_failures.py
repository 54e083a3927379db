"""Wrong API keys are bounded: ``ARQD_AUTH_FAILURES_PER_MINUTE`` per client address.

Each wrong key takes a token from its address's budget, a GCRA limit in Redis (scope
``auth``) that every API replica shares. Once the address is over it, every request from
it is refused ``429`` with ``Retry-After`` before its key is even compared, a right key
included: whoever guesses learns nothing until the budget has a token again, so keys
cannot be guessed faster than the budget allows. The price: a client whose address was
guessing (or that shares it, behind one NAT) waits out the block too, on the replicas that
saw the guessing.

A request with a valid key costs nothing here: no Redis call, two dict truth tests (and a
lookup while some address is blocked). A request without any key is refused ``401`` and
costs nothing either: it guesses nothing. A replica learns that an address is over its
budget from Redis' refusal, then refuses the address itself until the next token is due.
On one replica, the key of a request is compared only when no wrong key from its address
is on its way to Redis, so concurrent guesses cannot slip past a budget the first of them
would have found spent. When Redis cannot be asked, a wrong key still gets its ``401``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass

from starlette.types import Scope

from arqd.api import problems
from arqd.api.state import ApiState
from arqd.resilience.limiter import RateLimiter, Token

log = logging.getLogger("arqd.api")

SCOPE = "auth"  # the rate-limit scope of wrong keys
MINUTE_MS = 60_000
MAX_BLOCKED = 10_000  # addresses a replica remembers as over budget
WARN_EVERY = 60.0  # seconds between warnings that Redis could not be asked
_EVENT_PATH_MAX = 200


@dataclass(frozen=True, slots=True)
class Refusal:
    """An address over its budget: the answer is 429 for ``retry_after`` whole seconds."""

    retry_after: int


class AuthFailureLimit:
    """The budget of wrong keys per client address; ``per_minute`` > 0."""

    def __init__(self, state: ApiState, per_minute: int) -> None:
        self.state = state
        self.per_minute = per_minute
        self._blocked: dict[str, float] = {}  # address: monotonic time its next token is due
        self._asking: dict[str, asyncio.Event] = {}  # address: a wrong key on its way to Redis
        self._warned = -WARN_EVERY
        self._limiter: RateLimiter | None = None

    @property
    def limiter(self) -> RateLimiter:
        if self._limiter is None:  # the client is attached when the app starts
            self._limiter = self.state.client.rate_limiter(SCOPE)
        return self._limiter

    def watching(self) -> bool:
        """Is any address blocked, or being asked about? If not, skip ``before_compare``."""
        return bool(self._asking or self._blocked)

    async def before_compare(self, scope: Scope) -> Refusal | None:
        """May the key of this request be compared? Waits for the verdict on a wrong key
        from the same address already on its way to Redis."""
        address = client_address(scope)
        while (asking := self._asking.get(address)) is not None:
            await asking.wait()
        return self._blocked_now(address)

    async def failed(self, scope: Scope) -> Refusal | None:
        """A wrong key: takes a token from its address; a refusal once it is over budget."""
        address = client_address(scope)
        asking = self._asking[address] = asyncio.Event()
        try:
            token = await self._take(address)
        finally:
            if self._asking.get(address) is asking:
                del self._asking[address]
            asking.set()
        if token is None or token.allowed:
            return None
        self._block(address, token.retry_after_ms)
        await self._note(scope, address, token)
        return Refusal(_whole_seconds(token.retry_after_ms / 1000))

    async def _take(self, address: str) -> Token | None:
        try:
            (token,) = await self.limiter.take(
                [(subject(address), MINUTE_MS / self.per_minute, self.per_minute)]
            )
        except problems.UNAVAILABLE:
            self._warn("a wrong API key was not counted: Redis is unreachable")
            return None
        return token

    def _blocked_now(self, address: str) -> Refusal | None:
        due = self._blocked.get(address)
        if due is None:
            return None
        left = due - time.monotonic()
        if left <= 0:
            del self._blocked[address]
            return None
        return Refusal(_whole_seconds(left))

    def _block(self, address: str, ms: int) -> None:
        self._blocked.pop(address, None)  # re-inserted last: the dict is oldest first
        if len(self._blocked) >= MAX_BLOCKED:
            now = time.monotonic()
            self._blocked = {a: due for a, due in self._blocked.items() if due > now}
            while len(self._blocked) >= MAX_BLOCKED:
                del self._blocked[next(iter(self._blocked))]
        self._blocked[address] = time.monotonic() + ms / 1000

    async def _note(self, scope: Scope, address: str, token: Token) -> None:
        """An address found over its budget, as an event on the rate-limit stream (once
        per block: the requests refused meanwhile write nothing to Redis)."""
        fields: dict[str, str | int] = {
            "client": subject(address),
            "method": scope.get("method", "WEBSOCKET"),
            "path": scope["path"][:_EVENT_PATH_MAX],
            "limit": self.per_minute,
            "retry_after_ms": token.retry_after_ms,
        }
        try:
            await self.limiter.note_refused(fields)
        except problems.UNAVAILABLE:
            self._warn("an address over its wrong-key budget was not recorded: Redis is down")

    def _warn(self, message: str) -> None:
        """Warn at most once a minute: a guesser must not flood the log."""
        now = time.monotonic()
        if now - self._warned >= WARN_EVERY:
            self._warned = now
            log.warning(message)


def subject(address: str) -> str:
    """Whom the wrong-key budget counts: the client's address."""
    return f"addr:{address}"


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _whole_seconds(seconds: float) -> int:
    """Rounded up, at least 1: a client that waits this long gets a token."""
    return max(1, math.ceil(seconds))
