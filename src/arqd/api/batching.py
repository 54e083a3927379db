"""Calls that arrive together reach Redis together.

Under load, many requests are waiting on Redis at any moment. Rather than one round trip
each, the calls that arrive while a round trip is in flight are sent together as the next
one: one enqueue for the ``POST /tasks`` requests, one script call for the rate-limit tokens
they take. An idle server sends a lone call at once, so batching adds no latency; a busy one
sends fewer, larger batches, which is where its throughput comes from. Batches go out one
at a time, in arrival order, so tasks keep the order their requests arrived in.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from arqd.client import Client
from arqd.core.errors import InvalidTask
from arqd.core.task import Task
from arqd.store.codec import NewTask

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


class EnqueueBatcher(Batcher[NewTask, Task]):
    """Enqueues one task for each caller, sharing round trips between concurrent callers."""

    def __init__(self, client: Client, max_batch: int = 500) -> None:
        super().__init__(client.enqueue_many, max_batch)

    async def enqueue(self, task: NewTask) -> Task:
        """Enqueue ``task``; raises what ``Client.enqueue_many`` would for it alone."""
        return await self.submit(task)

    async def _failed(
        self, batch: list[tuple[NewTask, asyncio.Future[Task]]], exc: Exception
    ) -> None:
        if not isinstance(exc, InvalidTask) or len(batch) == 1:
            await super()._failed(batch, exc)
            return
        # The client validates every task before writing any, so nothing was written:
        # send them one by one, so each caller gets its own task's error.
        for waiter in batch:
            await super()._send([waiter])
