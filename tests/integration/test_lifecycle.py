"""A task's life seen from outside: it runs once, its result is readable, its events
arrive in order, and waiting on it ends when it finishes or when the caller gives up."""

from __future__ import annotations

from typing import Any

import pytest

from arqd.client import Client
from arqd.core.errors import TaskWaitTimeout
from arqd.core.task import TaskStatus
from arqd.store.store import Store
from arqd.worker import Registry
from conftest import StartWorker, task_events

pytestmark = pytest.mark.topologies()  # the engine's behaviour on every topology


async def test_a_task_runs_once_its_result_is_readable_and_events_arrive_in_order(
    client: Client, store: Store, start_worker: StartWorker
) -> None:
    calls: list[Any] = []
    registry = Registry()

    @registry.task()
    async def double(payload: dict[str, int]) -> int:
        calls.append(payload)
        return payload["n"] * 2

    await start_worker(registry)
    task = await client.enqueue("double", {"n": 21})
    assert task.status is TaskStatus.QUEUED
    done = await client.wait(task.id, timeout=10)
    assert done.status is TaskStatus.SUCCEEDED
    assert done.result == 42
    assert done.attempts == 1
    assert done.started_at is not None
    assert done.finished_at is not None
    assert calls == [{"n": 21}]
    assert await task_events(store, "default", task.id) == ["queued", "active", "succeeded"]


async def test_wait_times_out_clearly(client: Client) -> None:
    task = await client.enqueue("nobody_runs_this")
    with pytest.raises(TaskWaitTimeout, match="still queued"):
        await client.wait(task.id, timeout=0.2)
