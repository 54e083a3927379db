"""Single-task enqueues that arrive together reach Redis together.

Under load, many ``POST /tasks`` requests are waiting on Redis at any moment. Rather than
one round trip each, the requests that arrive while a round trip is in flight are sent
together as the next ``enqueue_many`` call: one pipeline, one script call per queue. An idle
server sends a lone request at once, so batching adds no latency; a busy one sends fewer,
larger batches, which is where its throughput comes from. Batches go out one at a time, in
arrival order, so tasks keep the order their requests arrived in.
"""

from __future__ import annotations

import asyncio
import contextlib

from arqd.client import Client
from arqd.core.errors import InvalidTask
from arqd.core.task import Task
from arqd.store.codec import NewTask

_Waiter = tuple[NewTask, "asyncio.Future[Task]"]


class EnqueueBatcher:
    """Enqueues one task for each caller, sharing round trips between concurrent callers."""

    def __init__(self, client: Client, max_batch: int = 500) -> None:
        self.client = client
        self.max_batch = max_batch
        self._waiting: list[_Waiter] = []
        self._sender: asyncio.Task[None] | None = None

    async def enqueue(self, task: NewTask) -> Task:
        """Enqueue ``task``; raises what ``Client.enqueue_many`` would for it alone."""
        future: asyncio.Future[Task] = asyncio.get_running_loop().create_future()
        self._waiting.append((task, future))
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

    async def _send(self, batch: list[_Waiter]) -> None:
        try:
            created = await self.client.enqueue_many([task for task, _ in batch])
        except InvalidTask:
            # The client validates every task before writing any, so nothing was written:
            # send them one by one, so each caller gets its own task's error.
            for waiter in batch:
                await self._send_one(waiter)
        except Exception as exc:
            for _, future in batch:
                _fail(future, exc)
        else:
            for (_, future), task in zip(batch, created, strict=True):
                if not future.done():
                    future.set_result(task)

    async def _send_one(self, waiter: _Waiter) -> None:
        task, future = waiter
        try:
            (created,) = await self.client.enqueue_many([task])
        except Exception as exc:
            _fail(future, exc)
        else:
            if not future.done():
                future.set_result(created)


def _fail(future: asyncio.Future[Task], exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)
