"""A task shows the max retries and timeout it runs with: its own, else its type's as a
live worker declares them, else the deployment's (QUEUE_MAX_RETRIES, TASK_TIMEOUT)."""

from __future__ import annotations

import pytest

from arqd.client import Client, NewTask
from arqd.core.task import Task
from arqd.worker import Registry
from conftest import StartWorker, eventually

pytestmark = pytest.mark.topologies()  # the engine's behaviour on every topology


async def test_a_task_shows_its_effective_retries_and_timeout(
    client: Client, start_worker: StartWorker
) -> None:
    registry = Registry()

    @registry.task(max_retries=5, timeout=7.0)
    async def declared(payload: object) -> None:
        return None

    @registry.task()
    async def plain(payload: object) -> None:
        return None

    s = client.settings
    (unknown,) = await client.enqueue_many([NewTask("nobody_runs_this")])
    shown = await client.get(unknown.id)
    assert shown is not None
    assert (shown.max_retries, shown.timeout) == (s.queue_max_retries, s.task_timeout / 1000)

    await start_worker(registry, concurrency=1)
    tasks = await client.enqueue_many(
        [NewTask("declared"), NewTask("declared", max_retries=1), NewTask("plain")]
    )
    seen: list[Task | None] = []

    async def finished() -> bool:
        seen[:] = [await client.get(t.id) for t in tasks]
        return all(t is not None and t.status.is_finished for t in seen)

    await eventually(finished)
    fresh = Client(client.store)  # a client that has not read the registry yet
    shown_all = [await fresh.get(t.id) for t in tasks]
    assert [(t.max_retries, t.timeout) for t in shown_all if t] == [
        (5, 7.0),
        (1, 7.0),
        (s.queue_max_retries, s.task_timeout / 1000),
    ]
    page = await fresh.list_tasks(task_type="declared")
    assert {(t.max_retries, t.timeout) for t in page.tasks} == {(5, 7.0), (1, 7.0)}
