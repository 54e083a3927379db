"""An attempt that outlives its timeout fails with TaskTimeout, async and sync handlers
alike, and is retried like any other failure while retries remain."""

from __future__ import annotations

import asyncio
import time

import pytest

from arqd.client import Client
from arqd.core.task import TaskStatus
from arqd.store.store import Store
from arqd.worker import Registry, TaskContext
from conftest import StartWorker

pytestmark = pytest.mark.topologies()  # the engine's behaviour on every topology


@pytest.mark.parametrize("is_async", [True, False])
async def test_timeouts_are_retried_then_succeed(
    client: Client, store: Store, start_worker: StartWorker, is_async: bool
) -> None:
    registry = Registry()

    async def slow_async(payload: None, ctx: TaskContext) -> str:
        if ctx.attempt == 1:
            await asyncio.sleep(30)
        return "second time lucky"

    def slow_sync(payload: None, ctx: TaskContext) -> str:
        if ctx.attempt == 1:
            time.sleep(1.0)
        return "second time lucky"

    registry.add(slow_async if is_async else slow_sync, "slow", timeout=0.2, base_delay=0.01)
    await start_worker(registry)
    task = await client.enqueue("slow")
    done = await client.wait(task.id, timeout=10)
    assert (done.status, done.attempts, done.result) == (
        TaskStatus.SUCCEEDED,
        2,
        "second time lucky",
    )
    entries = await store.events.read_after({"default": "0-0"}, 1, 1000)
    retry = [e.fields for e in entries if e.fields[b"event"] == b"retrying"]
    assert b"TaskTimeout" in retry[0][b"error"]


async def test_timeouts_fail_when_no_retries_remain(
    client: Client, start_worker: StartWorker
) -> None:
    registry = Registry()

    @registry.task(timeout=0.1, max_retries=0)
    async def stuck(payload: None) -> None:
        await asyncio.sleep(30)

    await start_worker(registry)
    done = await client.wait((await client.enqueue("stuck")).id, timeout=10)
    assert done.status is TaskStatus.FAILED
    assert done.error is not None
    assert done.error.type == "TaskTimeout"
