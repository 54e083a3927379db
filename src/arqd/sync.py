"""A blocking client for code that is not async: the async Client on a private loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from arqd.client import Client, TaskPage, WorkerInfo
from arqd.core.settings import Settings
from arqd.core.task import Task, TaskStatus
from arqd.store.codec import NewTask
from arqd.store.store import QueueStats

T = TypeVar("T")


class SyncClient:
    """The same operations as ``Client``, blocking. Safe to share between threads."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="arqd-sync-client"
        )
        self._thread.start()
        self._client = self._run(_make(settings))

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        if self._loop.is_running():
            self._run(self._client.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._loop.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def enqueue(self, task_type: str, payload: Any = None, **options: Any) -> Task:
        return self._run(self._client.enqueue(task_type, payload, **options))

    def enqueue_many(self, tasks: Sequence[NewTask]) -> list[Task]:
        return self._run(self._client.enqueue_many(tasks))

    def get(self, task_id: str, queue: str | None = None) -> Task | None:
        return self._run(self._client.get(task_id, queue))

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


async def _make(settings: Settings | None) -> Client:
    return Client.from_settings(settings)
