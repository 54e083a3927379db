"""Operators' actions on one task: cancel a queued, scheduled or running one (async
handlers are cancelled, sync ones see ``cancel_requested``); retry by hand a task that
failed once its retries ran out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from arqd import demo
from arqd.client import Client
from arqd.core.errors import InvalidTask, InvalidTransition, TaskNotFound
from arqd.core.task import TaskStatus
from arqd.worker import Registry, TaskContext
from conftest import StartWorker

pytestmark = pytest.mark.topologies()  # the engine's behaviour on every topology


async def test_cancel_queued_scheduled_and_finished(client: Client) -> None:
    queued = await client.enqueue("t")
    scheduled = await client.enqueue("t", delay=60)
    assert (await client.cancel(queued.id)).status is TaskStatus.CANCELLED
    assert (await client.cancel(scheduled.id)).status is TaskStatus.CANCELLED
    (stats,) = await client.stats()
    assert (stats.queued, stats.scheduled, stats.cancelled) == (0, 0, 2)
    with pytest.raises(InvalidTransition, match="already finished"):
        await client.cancel(queued.id)
    with pytest.raises(TaskNotFound):
        await client.cancel("no-such-task")


@pytest.mark.parametrize("is_async", [True, False])
async def test_cancel_a_running_task(
    client: Client, start_worker: StartWorker, is_async: bool
) -> None:
    registry = Registry()
    started = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def long_async(payload: None) -> None:
        started.set()
        await asyncio.sleep(30)

    def long_sync(payload: None, ctx: TaskContext) -> None:
        loop.call_soon_threadsafe(started.set)
        while not ctx.cancel_requested:  # cooperative: a sync handler checks the flag
            time.sleep(0.01)

    registry.add(long_async if is_async else long_sync, "long")
    await start_worker(registry)
    task = await client.enqueue("long")
    await asyncio.wait_for(started.wait(), 10)
    requested = await client.cancel(task.id)
    assert requested.status is TaskStatus.ACTIVE
    assert requested.cancel_requested
    done = await client.wait(task.id, timeout=10)
    assert done.status is TaskStatus.CANCELLED


async def test_exhausted_retries_fail_with_the_last_error_and_can_be_retried(
    client: Client, start_worker: StartWorker
) -> None:
    healthy = False
    registry = Registry()

    @registry.task(max_retries=2, base_delay=0.01)
    async def fragile(payload: None, ctx: TaskContext) -> str:
        if not healthy:
            raise RuntimeError(f"broken on attempt {ctx.attempt}")
        return "fixed"

    await start_worker(registry)
    task = await client.enqueue("fragile")
    failed = await client.wait(task.id, timeout=10)
    assert failed.status is TaskStatus.FAILED
    assert failed.attempts == 3
    assert failed.error is not None
    assert failed.error.message == "broken on attempt 3"
    page = await client.list_tasks(status="failed")
    assert [t.id for t in page.tasks] == [task.id]

    healthy = True
    again = await client.retry(task.id)
    assert again.status is TaskStatus.QUEUED
    assert again.attempts == 0
    done = await client.wait(task.id, timeout=10)
    assert (done.status, done.result) == (TaskStatus.SUCCEEDED, "fixed")
    assert (done.error, done.attempts) == (None, 1)  # the old attempts' error is not its own
    # The attempts before the retry stay in its events, each with its error.
    entries = await client.store.events.read_after({"default": "0-0"}, block_ms=1, count=1000)
    ended = [
        (e.fields[b"event"], int(e.fields[b"attempt"]), e.fields.get(b"error", b""))
        for e in entries
        if e.fields[b"task"] == task.id.encode()
    ]
    assert [(event, attempt) for event, attempt, _ in ended if event != b"active"] == [
        (b"queued", 0),
        (b"retrying", 1),
        (b"queued", 1),
        (b"retrying", 2),
        (b"queued", 2),
        (b"failed", 3),
        (b"queued", 0),
        (b"succeeded", 1),
    ]
    assert b"broken on attempt 3" in ended[[e for e, _, _ in ended].index(b"failed")][2]
    with pytest.raises(InvalidTransition, match="only failed or cancelled"):
        await client.retry(task.id)


async def test_finished_tasks_are_deleted_only_from_the_status_asked(
    client: Client, start_worker: StartWorker
) -> None:
    await start_worker(demo.registry)
    done = [await client.enqueue("echo", n) for n in range(3)]
    for task in done:
        await client.wait(task.id, timeout=10)
    later = await client.enqueue("echo", "later", delay=60)
    ids = [task.id for task in done] + [later.id, "no-such-task-id0"]
    assert await client.delete("default", "succeeded", ids) == 3
    assert [await client.get(task.id) for task in done] == [None, None, None]
    assert (await client.get(later.id)) is not None  # scheduled: left alone
    (stats,) = await client.stats("default")
    assert (stats.succeeded, stats.scheduled) == (0, 1)
    history = [e async for e in _events(client, done[0].id)]
    assert history[-1] == "deleted"
    assert await client.delete("default", "succeeded", ids) == 0  # nothing left to delete
    with pytest.raises(InvalidTask, match="only finished tasks"):
        await client.delete("default", "scheduled", [later.id])


async def _events(client: Client, task_id: str) -> AsyncIterator[str]:
    found = await client.store.events.read_after({"default": "0-0"}, 1, count=1000)
    for event in found:
        if event.fields[b"task"] == task_id.encode():
            yield event.fields[b"event"].decode()


async def test_a_scheduled_task_runs_now_when_asked(
    client: Client, start_worker: StartWorker
) -> None:
    await start_worker(demo.registry)
    later = await client.enqueue("echo", "soon", delay=3600)
    queued = await client.run_now(later.id)
    assert queued.status is TaskStatus.QUEUED
    done = await client.wait(later.id, timeout=10)
    assert (done.status, done.result) == (TaskStatus.SUCCEEDED, "soon")
    with pytest.raises(InvalidTransition, match="is succeeded, not scheduled"):
        await client.run_now(later.id)
    with pytest.raises(TaskNotFound):
        await client.run_now("no-such-task-id0")
