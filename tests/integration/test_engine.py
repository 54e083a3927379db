"""The engine's promises, against a real Redis with in-process workers."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from arqd.client import Client, NewTask
from arqd.core.errors import (
    InvalidTask,
    InvalidTransition,
    NonRetryable,
    PayloadTooLarge,
    Retry,
    TaskNotFound,
    TaskWaitTimeout,
)
from arqd.core.task import TaskStatus
from arqd.store.store import Store
from arqd.worker import Registry, TaskContext, Worker
from arqd.worker.fetching import IDLE_BLOCK
from conftest import eventually

StartWorker = Callable[..., Awaitable[Worker]]


class Email(BaseModel):
    to: str


async def events_of(store: Store, queue: str, task_id: str) -> list[str]:
    entries = await store.read_events(queue, b"0-0", block_ms=1, count=10_000)
    return [f[b"event"].decode() for _, f in entries if f[b"task"] == task_id.encode()]


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
    assert await events_of(store, "default", task.id) == ["queued", "active", "succeeded"]


async def test_sync_handlers_run_in_threads(client: Client, start_worker: StartWorker) -> None:
    registry = Registry()

    @registry.task()
    def shout(payload: str) -> str:
        time.sleep(0.05)  # blocking is fine: it runs in the thread pool
        return payload.upper()

    await start_worker(registry)
    tasks = await client.enqueue_many([NewTask("shout", f"t{i}") for i in range(5)])
    results = [await client.wait(t.id, timeout=10) for t in tasks]
    assert [r.result for r in results] == [f"T{i}" for i in range(5)]


async def test_priority_order_then_fifo(client: Client, start_worker: StartWorker) -> None:
    order: list[str] = []
    registry = Registry()

    @registry.task()
    async def record(payload: str) -> None:
        order.append(payload)

    specs = [
        ("low-1", -5),
        ("mid-1", 0),
        ("high-1", 10),
        ("mid-2", 0),
        ("high-2", 10),
        ("low-2", -5),
        ("mid-3", 0),
    ]
    tasks = await client.enqueue_many([NewTask("record", name, priority=p) for name, p in specs])
    await start_worker(registry, concurrency=1)
    for task in tasks:
        await client.wait(task.id, timeout=10)
    assert order == ["high-1", "high-2", "mid-1", "mid-2", "mid-3", "low-1", "low-2"]


async def test_a_delayed_task_starts_on_time_not_before(
    client: Client, start_worker: StartWorker
) -> None:
    started: list[float] = []
    registry = Registry()

    @registry.task()
    async def stamp(payload: None) -> None:
        started.append(time.time())

    await start_worker(registry)
    await asyncio.sleep(0.05)  # let the worker go idle, blocked on its wake-up key
    due = time.time() + 0.5
    task = await client.enqueue("stamp", delay=0.5)
    assert task.status is TaskStatus.SCHEDULED
    await client.wait(task.id, timeout=10)
    assert due - 0.002 <= started[0] <= due + 0.1


async def test_each_task_enqueued_while_others_run_wakes_the_idle_worker(
    client: Client, start_worker: StartWorker
) -> None:
    # Between tasks the worker blocks on its wake-up key: each task enqueued while it runs
    # earlier ones must wake it, not wait for the idle block to end.
    started: dict[str, float] = {}
    release = asyncio.Event()
    registry = Registry()

    @registry.task()
    async def hold(name: str) -> None:
        started[name] = time.monotonic()
        await release.wait()

    await start_worker(registry, concurrency=8)
    sent: dict[str, float] = {}
    for name in ("a", "b", "c"):

        async def running(name: str = name) -> bool:
            return name in started

        await asyncio.sleep(0.05)  # the worker is blocked again, on its wake-up key
        sent[name] = time.monotonic()
        await client.enqueue("hold", name)
        await eventually(running)
    release.set()
    assert all(started[n] - sent[n] < IDLE_BLOCK / 2 for n in sent), (started, sent)


async def test_run_span_is_the_first_start_to_the_last_finish(
    client: Client, store: Store, start_worker: StartWorker
) -> None:
    registry = Registry()

    @registry.task()
    async def quick(payload: None) -> None:
        pass

    pending = await client.enqueue("quick", delay=60)  # never started in this test
    assert await store.run_span(client.settings.queue, [pending.id]) is None
    tasks = await client.enqueue_many([NewTask("quick") for _ in range(3)])
    await start_worker(registry)
    done = [await client.wait(t.id, timeout=10) for t in tasks]
    starts = [t.started_at for t in done if t.started_at]
    ends = [t.finished_at for t in done if t.finished_at]
    span = await store.run_span(client.settings.queue, [pending.id, *(t.id for t in tasks)])
    assert span == (
        round(min(starts).timestamp() * 1000),
        round(max(ends).timestamp() * 1000),
    )


async def test_two_failures_then_success_with_growing_delays(
    client: Client, store: Store, start_worker: StartWorker
) -> None:
    starts: list[float] = []
    registry = Registry()

    @registry.task(base_delay=0.1, jitter=False)
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
    assert 0.1 <= first_gap < second_gap
    assert second_gap >= 0.2
    events = await events_of(store, "default", task.id)
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
    with pytest.raises(InvalidTransition, match="only failed or cancelled"):
        await client.retry(task.id)


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
    entries = await store.read_events("default", b"0-0", 1, 1000)
    retry = [f for _, f in entries if f[b"event"] == b"retrying"]
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


async def test_idempotency_key_returns_the_first_task(client: Client) -> None:
    first = await client.enqueue("charge", {"amount": 5}, idempotency_key="order-17")
    second = await client.enqueue("charge", {"amount": 5}, idempotency_key="order-17")
    other = await client.enqueue("charge", {"amount": 5}, idempotency_key="order-18")
    assert second.id == first.id
    assert other.id != first.id
    (stats,) = await client.stats("default")
    assert stats.queued == 2


async def test_a_batch_mixing_new_and_earlier_tasks_gets_each_its_own_answer(
    client: Client,
) -> None:
    # The script reports only the tasks that were there already; every other one in the
    # batch, in either queue, must still come back as itself, in the caller's order.
    a = await client.enqueue("charge", 1, idempotency_key="k-a")
    b = await client.enqueue("charge", 2, queue="other", idempotency_key="k-b")
    batch = [
        NewTask("charge", 10),
        NewTask("charge", 11, idempotency_key="k-a"),
        NewTask("charge", 12, queue="other", priority=3),
        NewTask("charge", 13, queue="other", idempotency_key="k-b"),
        NewTask("charge", 14, delay=60),
    ]
    tasks = await client.enqueue_many(batch)
    assert [t.id for t in tasks] == [batch[0].id, a.id, batch[2].id, b.id, batch[4].id]
    assert [t.payload for t in tasks] == [10, 1, 12, 2, 14]
    assert tasks[2].priority == 3
    assert tasks[4].status is TaskStatus.SCHEDULED


async def test_unknown_types_and_invalid_payloads_fail_without_retries(
    client: Client, start_worker: StartWorker
) -> None:
    registry = Registry()

    @registry.task()
    async def send(payload: Email) -> str:
        return payload.to

    await start_worker(registry)
    unknown = await client.wait((await client.enqueue("nobody_knows_me")).id, timeout=10)
    assert unknown.status is TaskStatus.FAILED
    assert unknown.error is not None
    assert unknown.error.type == "UnknownTaskType"
    assert "nobody_knows_me" in unknown.error.message
    invalid = await client.wait((await client.enqueue("send", {"too": "x"})).id, timeout=10)
    assert (invalid.status, invalid.attempts) == (TaskStatus.FAILED, 1)
    assert invalid.error is not None
    assert invalid.error.type == "InvalidPayload"
    assert "to" in invalid.error.message
    ok = await client.wait((await client.enqueue("send", {"to": "a@b"})).id, timeout=10)
    assert ok.result == "a@b"


async def test_results_that_are_not_json_fail_clearly(
    client: Client, start_worker: StartWorker
) -> None:
    registry = Registry()

    @registry.task()
    async def weird(payload: None) -> object:
        return object()

    await start_worker(registry)
    done = await client.wait((await client.enqueue("weird")).id, timeout=10)
    assert done.status is TaskStatus.FAILED
    assert done.error is not None
    assert done.error.type == "InvalidResult"


async def test_bad_input_is_refused_and_nothing_is_written(client: Client) -> None:
    with pytest.raises(PayloadTooLarge):
        await client.enqueue("t", "x" * (client.settings.max_payload_bytes + 1))
    with pytest.raises(InvalidTask, match="not JSON-serializable"):
        await client.enqueue("t", {"when": object()})
    with pytest.raises(InvalidTask, match="invalid task type"):
        await client.enqueue("no spaces allowed")
    with pytest.raises(InvalidTask, match="invalid queue"):
        await client.enqueue("t", queue="{bad}")
    with pytest.raises(InvalidTask):  # one bad task in a batch: none is written
        await client.enqueue_many([NewTask("ok", 1), NewTask("ok", 2), NewTask("bad name", 3)])
    assert await client.stats() == []
    assert (await client.list_tasks()).tasks == []


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


async def test_wait_times_out_clearly(client: Client) -> None:
    task = await client.enqueue("nobody_runs_this")
    with pytest.raises(TaskWaitTimeout, match="still queued"):
        await client.wait(task.id, timeout=0.2)


async def test_list_filters_and_pages(client: Client) -> None:
    created = await client.enqueue_many(
        [NewTask("a" if i % 2 else "b", i) for i in range(7)] + [NewTask("a", 99, queue="other")]
    )
    seen: list[str] = []
    cursor = None
    while True:
        page = await client.list_tasks(queue="default", task_type="a", cursor=cursor, limit=2)
        seen += [t.id for t in page.tasks]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [t.id for t in created[:7] if t.type == "a"]
    everything = await client.list_tasks(limit=100)
    assert len(everything.tasks) == 8
    with pytest.raises(InvalidTask, match="unknown status"):
        await client.list_tasks(status="sleeping")
    with pytest.raises(InvalidTask, match="invalid cursor"):
        await client.list_tasks(cursor="!!")


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


@pytest.mark.parametrize(
    "crafted",
    [[-5, 0, 0], [0, -1, 0], [0, 0, -1], [0, 0, 2**62], [0, 0, 1.5], [True, 0, 0], [1, 2], {}],
)
async def test_a_crafted_cursor_is_refused_not_a_crash(client: Client, crafted: object) -> None:
    await client.enqueue("t")
    with pytest.raises(InvalidTask, match="invalid cursor"):
        await client.list_tasks(cursor=_cursor(crafted))


async def test_a_cursor_past_the_end_is_an_empty_last_page(client: Client) -> None:
    await client.enqueue("t")
    page = await client.list_tasks(cursor=_cursor([7, 0, 0]))
    assert (page.tasks, page.next_cursor) == ([], None)
    page = await client.list_tasks(cursor=_cursor([0, 1, 2**31]))  # past the queued one
    assert page.tasks == []


async def test_stats_report_the_age_of_the_oldest_queued_task(client: Client) -> None:
    await client.enqueue("t")
    await asyncio.sleep(0.2)
    await client.enqueue("t", priority=5)
    (stats,) = await client.stats("default")
    assert stats.queued == 2
    assert stats.oldest_age is not None
    assert stats.oldest_age >= 0.2


async def test_live_workers_are_registered(client: Client, start_worker: StartWorker) -> None:
    worker = await start_worker(Registry(), queues=["default", "mail"])

    async def registered() -> bool:
        return [w.id for w in await client.workers()] == [worker.id]

    await eventually(registered)
    (info,) = await client.workers()
    assert info.details["queues"] == ["default", "mail"]
