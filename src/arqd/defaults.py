"""The max retries and attempt timeout a task runs with when it sets neither itself.

Only workers know a task type's own defaults (``@registry.task(max_retries=5)``); each
records them in the registry of live workers. A task shown to a person (``GET /tasks``,
``arqd enqueue``) carries its effective values: its own, else its type's as a live worker
declares them, else the deployment's (``QUEUE_MAX_RETRIES``, ``TASK_TIMEOUT``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import replace

from arqd.core.settings import Settings
from arqd.core.task import Task
from arqd.store.store import Store

FRESH_SECONDS = 5.0  # how long one read of the registry serves


class TypeDefaults:
    """Each task type's (max retries, timeout s), read from live workers now and then."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.fallback = (settings.queue_max_retries, settings.task_timeout / 1000)
        self._by_type: dict[str, tuple[int, float]] = {}
        self._read_at = -FRESH_SECONDS

    async def apply(self, tasks: Iterable[Task | None]) -> list[Task | None]:
        """``tasks`` with their effective max retries and timeout filled in."""
        tasks = list(tasks)
        if any(t is not None and (t.max_retries is None or t.timeout is None) for t in tasks):
            await self.refresh()
        return [None if t is None else self._effective(t) for t in tasks]

    def of(self, task_type: str) -> tuple[int, float]:
        """The type's (max retries, timeout s) as last read (``refresh``)."""
        return self._by_type.get(task_type, self.fallback)

    async def one(self, task: Task) -> Task:
        (effective,) = await self.apply([task])
        assert effective is not None
        return effective

    def _effective(self, task: Task) -> Task:
        if task.max_retries is not None and task.timeout is not None:
            return task
        retries, timeout = self.of(task.type)
        return replace(
            task,
            max_retries=retries if task.max_retries is None else task.max_retries,
            timeout=timeout if task.timeout is None else task.timeout,
        )

    def stale(self) -> bool:
        return time.monotonic() - self._read_at >= FRESH_SECONDS

    async def refresh(self) -> None:
        """Read the live workers' declarations again, if the last read is stale."""
        if not self.stale():
            return
        by_type: dict[str, tuple[int, float]] = {}
        for worker in await self.store.workers.live():
            for name, (retries, timeout) in worker.details.get("defaults", {}).items():
                by_type[name] = (int(retries), float(timeout))
        self._by_type = by_type
        self._read_at = time.monotonic()
