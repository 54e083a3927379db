"""Failed attempts are retried with growing delays (or the delay a handler asks for)
until the retry budget is spent; some failures are never retried."""

from __future__ import annotations

import time

import pytest

from arqd.client import Client
from arqd.core.errors import NonRetryable, Retry
from arqd.core.task import TaskStatus
from arqd.store.store import Store
from arqd.worker import Registry, TaskContext
from conftest import StartWorker, task_events

pytestmark = pytest.mark.topologies()  # the engine's behaviour on every topology


async def test_two_failures_then_success_with_growing_delays(
    client: Client, store: Store, start_worker: StartWorker
) -> None:
    starts: list[float] = []
    registry = Registry()

    # Delays of 0.2 s then 0.4 s: the step between them outweighs a loaded machine's lag.
    @registry.task(base_delay=0.2, jitter=False)
    async def flaky(payload: None, ctx: TaskContext) -> str:
        starts.append(time.monotonic())
        if ctx.attempt < 3:
            raise ConnectionError(f"attempt {ctx.attempt} failed")
        return "ok"

    await start_worker(registry)
    task = await client.enqueue("flaky")
    done = await client.wait(task.id, timeout=10)
    assert done.status is TaskStatus.SUCCEEDED
    assert done.attempts == 3
    assert done.error is None
    first_gap, second_gap = starts[1] - starts[0], starts[2] - starts[1]
    assert 0.2 <= first_gap < second_gap
    assert second_gap >= 0.4
    events = await task_events(store, "default", task.id)
    assert events.count("retrying") == 2


async def test_non_retryable_fails_at_once(client: Client, start_worker: StartWorker) -> None:
    registry = Registry()

    @registry.task()
    async def refuse(payload: None) -> None:
        raise NonRetryable("card declined")

    await start_worker(registry)
    done = await client.wait((await client.enqueue("refuse")).id, timeout=10)
    assert done.status is TaskStatus.FAILED
    assert done.attempts == 1
    assert done.error is not None
    assert (done.error.type, done.error.message) == ("NonRetryable", "card declined")
    assert done.error.traceback
    assert "card declined" in done.error.traceback


async def test_retry_with_an_explicit_delay(client: Client, start_worker: StartWorker) -> None:
    starts: list[float] = []
    registry = Registry()

    @registry.task()
    async def later(payload: None) -> None:
        starts.append(time.monotonic())
        if len(starts) == 1:
            raise Retry(delay=0.3)

    await start_worker(registry)
    await client.wait((await client.enqueue("later")).id, timeout=10)
    assert starts[1] - starts[0] >= 0.3


async def test_max_retries_set_at_enqueue_overrides_the_type(
    client: Client, start_worker: StartWorker
) -> None:
    registry = Registry()

    @registry.task(max_retries=5, base_delay=0.01)
    async def boom(payload: None) -> None:
        raise RuntimeError("boom")

    await start_worker(registry)
    done = await client.wait((await client.enqueue("boom", max_retries=0)).id, timeout=10)
    assert (done.status, done.attempts) == (TaskStatus.FAILED, 1)
