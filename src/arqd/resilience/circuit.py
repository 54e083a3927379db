"""Named circuit breakers a handler wraps around a dependency, with their state in Redis."""

from __future__ import annotations

import asyncio
from types import TracebackType

from arqd.core.errors import CircuitOpen
from arqd.resilience.breaker import BreakerPolicy
from arqd.store.store import Store


class CircuitBreaker:
    """``async with breaker:`` around a call; every worker shares the breaker's state.

    While the breaker is open, entering raises ``CircuitOpen`` (a ``Retry``), so the task
    is retried when the breaker will let a trial through; its retries are not burned on
    a dependency known to be down. Sync handlers use ``with breaker:`` the same way.
    """

    def __init__(
        self,
        name: str,
        store: Store,
        policy: BreakerPolicy | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.name = name
        self.store = store
        self.policy = policy or BreakerPolicy()
        self._loop = loop
        settings = store.settings
        self.threshold = self.policy.threshold or settings.circuit_breaker_threshold
        self.open_ms = (
            round(self.policy.timeout * 1000)
            if self.policy.timeout is not None
            else settings.circuit_breaker_timeout
        )

    async def __aenter__(self) -> CircuitBreaker:
        answer = await self.store.limits.breaker(self.name, "allow")
        if not answer.allowed:
            raise CircuitOpen(self.name, answer.retry_after_ms / 1000)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            outcome = "ok"
        elif isinstance(exc, Exception) and self.policy.counts(exc):
            outcome = "fail"
        else:
            outcome = "neutral"
        await self.store.limits.breaker(self.name, outcome, self.threshold, self.open_ms)

    def __enter__(self) -> CircuitBreaker:
        return asyncio.run_coroutine_threadsafe(self.__aenter__(), self._require_loop()).result()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        coro = self.__aexit__(exc_type, exc, tb)
        asyncio.run_coroutine_threadsafe(coro, self._require_loop()).result()

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("a sync `with breaker:` needs the worker's loop (use ctx.breaker)")
        return self._loop

    async def reset(self) -> None:
        """Close the breaker by hand."""
        await self.store.limits.breaker(self.name, "reset")
