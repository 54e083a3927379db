"""A blocking client for code that is not async.

Enqueueing, the call a blocking producer makes most, goes straight to Redis from the
calling thread (``BlockingEnqueuer``); everything else runs the async Client on a private
event loop in a thread of its own: its methods, and those of its ``workflows``,
``schedules`` and ``queues`` (``arqd.sync_control``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from arqd.client import BreakerInfo, Client, QueueStats, TaskPage, Throughput, WorkerInfo
from arqd.core.errors import TaskNotFound
from arqd.core.reports import LogLine
from arqd.core.settings import Settings
from arqd.core.task import NewTask, Task, TaskStatus
from arqd.enqueueing import created_at, prepare, settle, snapshot
from arqd.store.blocking import BlockingEnqueuer
from arqd.store.connection import resolve_url
from arqd.store.history import KEPT_MINUTES
from arqd.sync_control import SyncQueueControl, SyncScheduleControl, SyncWorkflowControl

T = TypeVar("T")


class SyncClient:
    """The same operations as ``Client``, blocking. Safe to share between threads."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        url = resolve_url(self.settings)
        self._enqueuer = BlockingEnqueuer(url, self.settings)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="arqd-sync-client"
        )
        self._thread.start()
        self._client = self._run(_make(url, self.settings))
        # The async client's, blocking (``arqd.sync_control``).
        self.workflows = SyncWorkflowControl(self._client.workflows, self._run)
        self.schedules = SyncScheduleControl(self._client.schedules, self._run)
        self.queues = SyncQueueControl(self._client.queues, self._run)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        if self._loop.is_running():
            self._run(self._client.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._loop.close()
        self._enqueuer.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def enqueue(self, task_type: str, payload: Any = None, **options: Any) -> Task:
        """Enqueue one task. Options are the fields of ``NewTask``."""
        return self.enqueue_many([NewTask(task_type, payload, **options)])[0]

    def enqueue_many(self, tasks: Sequence[NewTask]) -> list[Task]:
        """Enqueue many tasks in one round trip per queue; all validated before any write."""
        queues = prepare(tasks, self.settings)
        outcomes = self._enqueuer.enqueue(tasks)
        defaults = self._client.defaults
        if defaults.stale():
            self._run(defaults.refresh())
        return [
            settle(snapshot(task, queue, defaults.of(task.type)), task, o, created_at(o.at_ms))
            if o.created
            else self._require(o.id, queue)
            for task, queue, o in zip(tasks, queues, outcomes, strict=True)
        ]

    def _require(self, task_id: str, queue: str) -> Task:
        task = self.get(task_id, queue)
        if task is None:
            raise TaskNotFound(task_id)
        return task

    def get(self, task_id: str, queue: str | None = None) -> Task | None:
        return self._run(self._client.get(task_id, queue))

    def logs(self, task_id: str, queue: str | None = None) -> list[LogLine]:
        """The lines each attempt of the task logged, oldest first (see ``Client.logs``)."""
        return self._run(self._client.logs(task_id, queue))

    def list_tasks(
        self,
        queue: str | None = None,
        status: TaskStatus | str | None = None,
        task_type: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> TaskPage:
        return self._run(self._client.list_tasks(queue, status, task_type, cursor, limit))

    def cancel(self, task_id: str, queue: str | None = None) -> Task:
        return self._run(self._client.cancel(task_id, queue))

    def retry(self, task_id: str, queue: str | None = None) -> Task:
        return self._run(self._client.retry(task_id, queue))

    def wait(self, task_id: str, timeout: float | None = None, queue: str | None = None) -> Task:
        return self._run(self._client.wait(task_id, timeout, queue))

    def stats(self, queue: str | None = None) -> list[QueueStats]:
        return self._run(self._client.stats(queue))

    def workers(self) -> list[WorkerInfo]:
        return self._run(self._client.workers())

    def run_now(self, task_id: str, queue: str | None = None) -> Task:
        return self._run(self._client.run_now(task_id, queue))

    def delete(self, queue: str, status: TaskStatus | str, task_ids: Sequence[str]) -> int:
        return self._run(self._client.delete(queue, status, task_ids))

    def throughput(self, queue: str, minutes: int = KEPT_MINUTES) -> Throughput:
        return self._run(self._client.throughput(queue, minutes))

    def breakers(self) -> list[BreakerInfo]:
        return self._run(self._client.breakers())

    def breaker(self, name: str) -> BreakerInfo | None:
        return self._run(self._client.breaker(name))

    def reset_breaker(self, name: str) -> BreakerInfo:
        return self._run(self._client.reset_breaker(name))

    def ping(self) -> None:
        self._run(self._client.ping())


async def _make(url: str, settings: Settings) -> Client:
    return Client.connect(url, settings)  # in the loop's thread: the pool binds to it
