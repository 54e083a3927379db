"""Tasks as producers and operators see them: enqueue, read, cancel, retry, count."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence
from typing import Any

from arqd.core.settings import Settings
from arqd.core.task import NewTask, Task
from arqd.store import codec
from arqd.store.codec import ArgList, Cancelled, Enqueued, Retried
from arqd.store.connection import RedisClient
from arqd.store.grouping import EnqueueGroups
from arqd.store.keys import Keys
from arqd.store.queue_stats import QueueStats, decode_stats
from arqd.store.scripts import Scripts

REGISTER_EVERY = 10.0  # seconds: a queue's name is added to the set again this often


class QueueNames:
    """Which queue names this process added to the set of queue names, and when. A name
    goes into the set before the queue's first enqueue, so a feed over every queue, which
    reads the set with the streams, knows a queue before any of its events (see
    ``feeds``); it is added again now and then, for a Redis that lost its data."""

    def __init__(self) -> None:
        self._added: dict[str, float] = {}

    def due(self, queue: str) -> bool:
        added = self._added.get(queue)
        return added is None or time.monotonic() - added > REGISTER_EVERY

    def added(self, queue: str) -> None:
        self._added[queue] = time.monotonic()


class Tasks:
    """Every state change is one script call; reads are plain commands."""

    def __init__(self, scripts: Scripts, keys: Keys, settings: Settings) -> None:
        self.scripts = scripts
        self.redis: RedisClient = scripts.redis
        self.keys = keys
        self.settings = settings
        self._singles = EnqueueGroups(self._enqueue_call)
        self._names = QueueNames()

    async def enqueue(self, tasks: Sequence[NewTask]) -> list[Enqueued]:
        """Enqueue tasks, one script call per queue (concurrent), every task validated
        before any is sent; the answers in order."""
        if len(tasks) == 1:
            return [await self.enqueue_one(tasks[0])]
        s = self.settings
        calls = codec.plan_enqueue(tasks, s.queue, s.max_payload_bytes, s.idempotency_ttl)
        if len(calls) == 1:  # sent before this first awaits (see Client.enqueue_many)
            replies = [await self._enqueue_call(calls[0].queue, len(tasks), calls[0].args)]
        else:
            replies = await asyncio.gather(
                *(self._enqueue_call(c.queue, len(c.positions), c.args) for c in calls)
            )
        return codec.in_batch_order(calls, replies, len(tasks))

    def enqueue_one(self, task: NewTask) -> Awaitable[Enqueued]:
        """``enqueue`` of one task: sent at once, or with the others made while an
        earlier one is on its way to Redis (see ``grouping``). The task is validated at
        once; the answer is awaited (a plain function: one coroutine less a task)."""
        s = self.settings
        args = codec.enqueue_args(task, s.max_payload_bytes, s.idempotency_ttl)
        return self._singles.enqueue(task.queue or s.queue, task.id, args)

    async def _enqueue_call(self, queue: str, count: int, args: ArgList) -> list[Any]:
        """One enqueue script call of ``count`` tasks on ``queue``, its name added to the set
        of queue names first (see ``QueueNames``)."""
        if self._names.due(queue):
            await self._add_name(queue)
        keys = [self.keys.queue(queue)]
        reply: list[Any] = await self.scripts.run_acked(
            codec.enqueue_script(args), keys, self.settings.events_max, count, *args
        )
        if codec.had_no_stream(reply):
            await self._add_name(queue)
        return reply

    async def _add_name(self, queue: str) -> None:
        """Add ``queue`` to the set of queue names, over the shared connection of the set's
        node (redis-py's cluster client failed now and then when many coroutines opened
        connections at once: tests/e2e/test_cluster_slots.py)."""
        await self.scripts.on_key("SADD", self.keys.queues(), queue)
        self._names.added(queue)

    async def cancel(self, queue: str, task_id: str) -> Cancelled:
        """Cancel a queued or scheduled task; ask the worker running an active one to stop."""
        s = self.settings
        reply = await self.scripts.run_acked(
            "cancel",
            [self.keys.queue(queue)],
            task_id,
            s.events_max,
            s.finished_index_max,
            s.result_ttl,
        )
        return Cancelled(reply.decode())

    async def retry(self, queue: str, task_id: str) -> Retried:
        """Queue a failed or cancelled task again (a worker may take it at once)."""
        keys = [self.keys.queue(queue)]
        reply = await self.scripts.run_acked("retry", keys, task_id, self.settings.events_max)
        return codec.decode_retried(queue, task_id, reply)

    async def delete(self, queue: str, status: str, task_ids: Sequence[str]) -> int:
        """Delete the tasks of ``task_ids`` still in the finished ``status``; how many."""
        keys = [self.keys.queue(queue)]
        return int(
            await self.scripts.run("delete", keys, status, self.settings.events_max, *task_ids)
        )

    async def run_now(self, queue: str, task_id: str) -> Retried:
        """Queue a scheduled task at once (its delay or backoff cut short)."""
        keys = [self.keys.queue(queue)]
        reply = await self.scripts.run_acked("run_now", keys, task_id, self.settings.events_max)
        return codec.decode_retried(queue, task_id, reply)

    async def stats(self, queue: str) -> QueueStats:
        """Counts by status and held tasks by reason (see ``queue_stats.QueueStats``)."""
        s = self.settings
        reply = await self.scripts.run(
            "stats", [self.keys.queue(queue)], s.result_ttl, s.failed_ttl
        )
        return decode_stats(queue, reply)

    async def queues(self) -> list[str]:
        """Every queue ever enqueued to, by name."""
        names = await self.redis.smembers(self.keys.queues())
        return sorted(codec.text(n) for n in names)

    async def get(self, task_id: str, queue: str | None = None) -> Task | None:
        """The task, looked up in ``queue`` or, when None, in every known queue."""
        candidates = [queue] if queue else await self.queues()
        pipe = self.redis.pipeline(transaction=False)
        for q in candidates:
            pipe.hgetall(self.keys.task(q, task_id))
        for q, h in zip(candidates, await pipe.execute(), strict=True):
            if h:
                return codec.decode_task(q, task_id, h)
        return None

    async def by_idempotency_key(self, queue: str, key: str) -> Task | None:
        """The task ``key`` names on ``queue`` while the key lives (and the task does)."""
        task_id = await self.redis.get(self.keys.idempotency(queue, key))
        return await self.get(codec.text(task_id), queue) if task_id else None

    async def get_many(self, queue: str, task_ids: Sequence[str]) -> list[Task | None]:
        pipe = self.redis.pipeline(transaction=False)
        for task_id in task_ids:
            pipe.hgetall(self.keys.task(queue, task_id))
        hashes = await pipe.execute()
        return [
            codec.decode_task(queue, i, h) if h else None
            for i, h in zip(task_ids, hashes, strict=True)
        ]
