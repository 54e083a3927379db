"""Rate limits shared by every process: GCRA budgets kept in Redis (the arithmetic is
``ratelimit.gcra``'s), one scope at a time."""

from __future__ import annotations

from collections.abc import Sequence

from arqd.store.codec import Token
from arqd.store.store import Store

__all__ = ["RateLimiter", "Token"]


class RateLimiter:
    """The limits of one scope (``http``, say), each named by its subject."""

    def __init__(self, store: Store, scope: str) -> None:
        self.store = store
        self.scope = scope

    async def take(self, wanted: Sequence[tuple[str, float, int]]) -> list[Token]:
        """A token for each (subject, interval ms between tokens, burst), in order, in
        one script call."""
        return await self.store.limits.take_tokens(self.scope, wanted)

    async def note_refused(self, fields: dict[str, str | int]) -> None:
        """Record a refusal on the rate-limit event stream (``WS /events/system``)."""
        await self.store.limits.note_refused({"scope": self.scope, **fields})
