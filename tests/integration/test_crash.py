"""Workers that die or are told to stop lose nothing: real worker processes, real signals."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from arqd.client import Client
from arqd.core.lease import Answer, Lease
from arqd.core.settings import Settings
from arqd.core.task import TaskStatus
from arqd.store.codec import Renewal
from arqd.store.store import Store
from conftest import WorkerProcess, eventually

pytestmark = pytest.mark.topologies()  # the engine's behaviour on every topology


async def until_status(client: Client, task_id: str, status: TaskStatus) -> None:
    async def reached() -> bool:
        task = await client.get(task_id)
        return task is not None and task.status is status

    await eventually(reached, timeout=20)


async def test_a_killed_worker_s_task_is_completed_by_another(
    client: Client, settings: Settings, workers: list[WorkerProcess]
) -> None:
    workers.append(WorkerProcess(settings, "crash_tasks"))
    task = await client.enqueue("slow_first_time", 60)
    await until_status(client, task.id, TaskStatus.ACTIVE)
    workers[0].signal(signal.SIGKILL)
    killed_at = time.monotonic()
    workers[0].wait()

    workers.append(WorkerProcess(settings, "crash_tasks"))

    async def taken_again() -> bool:
        found = await client.get(task.id)
        return found is not None and found.attempts >= 2

    await eventually(taken_again, timeout=30)
    reclaimed = time.monotonic() - killed_at
    assert reclaimed <= settings.lease_timeout / 1000 + 2, f"reclaimed after {reclaimed:.1f} s"
    done = await client.wait(task.id, timeout=30)
    assert done.status is TaskStatus.SUCCEEDED
    assert done.result == "done on attempt 2"
    assert done.attempts == 2


async def test_an_answer_with_a_stale_token_is_refused(store: Store, client: Client) -> None:
    task = await client.enqueue("anything")
    (first,) = (await store.leases.dequeue("default", 1, "worker-that-will-die")).leases
    leased: list[Lease] = []

    async def releases() -> bool:
        leased[:] = (await store.leases.dequeue("default", 1, "second-worker")).leases
        return bool(leased)

    await eventually(releases, timeout=10)  # once the first lease lapses
    (second,) = leased
    assert (second.id, second.attempt) == (task.id, 2)
    assert second.token != first.token
    assert await store.leases.finish("default", [Answer(first, "succeeded", b'"late"')]) == [False]
    assert await store.leases.heartbeat("default", [first]) == Renewal(
        frozenset({task.id}), frozenset()
    )
    assert await store.leases.finish("default", [Answer(second, "succeeded", b'"fresh"')]) == [True]
    done = await client.get(task.id)
    assert done is not None
    assert (done.status, done.result) == (TaskStatus.SUCCEEDED, "fresh")


async def test_sigterm_lets_a_running_task_finish_within_the_grace_period(
    client: Client, settings: Settings, workers: list[WorkerProcess]
) -> None:
    workers.append(WorkerProcess(settings, "crash_tasks", grace_ms=10_000))
    task = await client.enqueue("nap", 1.0)
    await until_status(client, task.id, TaskStatus.ACTIVE)
    workers[0].signal(signal.SIGTERM)
    assert await asyncio.to_thread(workers[0].wait) == 0
    done = await client.get(task.id)
    assert done is not None
    assert (done.status, done.result) == (TaskStatus.SUCCEEDED, "rested")
    assert await client.workers() == []


async def test_sigterm_hands_back_what_cannot_finish_in_time(
    client: Client, settings: Settings, workers: list[WorkerProcess]
) -> None:
    workers.append(WorkerProcess(settings, "crash_tasks", grace_ms=300))
    task = await client.enqueue("nap", 2.0)
    await until_status(client, task.id, TaskStatus.ACTIVE)
    workers[0].signal(signal.SIGTERM)
    assert await asyncio.to_thread(workers[0].wait) == 0
    handed_back = await client.get(task.id)
    assert handed_back is not None
    assert (handed_back.status, handed_back.attempts) == (TaskStatus.QUEUED, 0)

    workers.append(WorkerProcess(settings, "crash_tasks"))
    done = await client.wait(task.id, timeout=30)
    assert (done.status, done.result, done.attempts) == (TaskStatus.SUCCEEDED, "rested", 1)
