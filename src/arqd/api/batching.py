"""Rate-limit tokens of requests that arrive together are taken in one script call.

Under load, many requests are waiting on Redis at any moment. Rather than one round trip
each, the token requests that arrive while a call is in flight are sent together as the
next one. An idle server sends a lone call at once, so batching adds no latency; a busy one
sends fewer, larger batches (bench.bench_api with a rate limit on). Enqueues are grouped
by the store itself (``arqd.store.grouping``), not here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class Batcher(Generic[In, Out]):
    """Runs ``send`` on the items of concurrent callers, a batch at a time; ``send`` returns
    one result per item, in order."""

    def __init__(self, send: Callable[[list[In]], Awaitable[list[Out]]], max_batch: int) -> None:
        self.send = send
        self.max_batch = max_batch
        self._waiting: list[tuple[In, asyncio.Future[Out]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def submit(self, item: In) -> Out:
        """``item``'s result; raises what ``send`` raised for its batch."""
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_all())
        return await future

    async def close(self) -> None:
        """Wait for the batches already accepted to be sent."""
        if self._sender is not None:
            with contextlib.suppress(Exception):
                await self._sender

    async def _send_all(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self.max_batch]
                del self._waiting[: self.max_batch]
                await self._send(batch)
        finally:
            self._sender = None

    async def _send(self, batch: list[tuple[In, asyncio.Future[Out]]]) -> None:
        try:
            results = await self.send([item for item, _ in batch])
        except Exception as exc:
            await self._failed(batch, exc)
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _failed(self, batch: list[tuple[In, asyncio.Future[Out]]], exc: Exception) -> None:
        for _, future in batch:
            if not future.done():
                future.set_exception(exc)
