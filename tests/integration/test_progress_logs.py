"""Progress and log lines of running attempts: stored on the task and in its capped log
lists, sent as events, coalesced, fenced by the lease token, kept when the worker dies."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time

import orjson
import pytest

from arqd.client import Client
from arqd.core.lease import Lease
from arqd.core.reports import encode_line, encode_progress
from arqd.core.settings import Settings
from arqd.core.task import TaskStatus
from arqd.store.connection import connect
from arqd.store.store import Store
from arqd.worker import Registry, TaskContext, Worker
from arqd.worker.reporting import INTERVAL
from conftest import StartWorker, WorkerProcess, eventually

pytestmark = pytest.mark.topologies()  # progress.lua and the lists on every topology
log = logging.getLogger("handlers")


async def _events(store: Store, task_id: str, name: str) -> list[dict[bytes, bytes]]:
    entries = await store.events.read_after({"default": "0-0"}, block_ms=1, count=100_000)
    mine = task_id.encode()
    return [
        e.fields
        for e in entries
        if e.fields[b"task"] == mine and e.fields[b"event"] == name.encode()
    ]


async def test_progress_is_on_the_task_and_its_events(
    client: Client, store: Store, start_worker: StartWorker
) -> None:
    registry = Registry()
    go = asyncio.Event()

    @registry.task()
    async def work(payload: None, ctx: TaskContext) -> str:
        ctx.progress(0.25, "a quarter")
        await go.wait()
        ctx.progress({"done": 3, "of": 4})
        return "ok"

    await start_worker(registry)
    task = await client.enqueue("work")

    async def reported() -> bool:
        found = await client.get(task.id)
        return found is not None and found.progress is not None

    await eventually(reported)
    running = await client.get(task.id)
    assert running is not None
    assert running.progress is not None
    assert (running.progress.value, running.progress.message) == (0.25, "a quarter")
    assert running.progress.attempt == 1
    assert running.status is TaskStatus.ACTIVE
    go.set()
    done = await client.wait(task.id, timeout=10)
    assert done.progress is not None
    assert done.progress.value == {"done": 3, "of": 4}
    events = await _events(store, task.id, "progress")
    assert [orjson.loads(e[b"data"])["value"] for e in events] == [0.25, {"done": 3, "of": 4}]


async def test_ten_thousand_progress_calls_make_a_handful_of_writes(
    client: Client, store: Store, start_worker: StartWorker
) -> None:
    registry = Registry()
    seen: list[TaskContext] = []
    took: list[float] = []

    @registry.task()
    async def busy(payload: int, ctx: TaskContext) -> str:
        started = time.monotonic()
        for n in range(1, payload + 1):
            ctx.progress(n / payload, f"step {n}")
            if n % 100 == 0:  # 10,000 calls spread over about a second
                await asyncio.sleep(max(0.0, started + n / payload - time.monotonic()))
        seen.append(ctx)
        took.append(time.monotonic() - started)
        return "ok"

    await start_worker(registry)
    task = await client.enqueue("busy", 10_000)
    done = await client.wait(task.id, timeout=20)
    events = await _events(store, task.id, "progress")
    assert done.progress is not None
    assert (done.progress.value, done.progress.message) == (1.0, "step 10000")
    assert orjson.loads(events[-1][b"data"])["value"] == 1.0  # the last value, exactly
    # One write per INTERVAL over the calls (about a second, longer on a loaded machine),
    # and the last write before the answer.
    assert len(events) <= took[0] / INTERVAL + 2, (len(events), took)
    report = seen[0].report
    assert report is not None
    assert report.writes == len(events)
    print(f"10,000 progress calls: {len(events)} events, {report.writes} writes")


async def test_a_sync_handler_reports_from_its_thread(
    client: Client, store: Store, start_worker: StartWorker
) -> None:
    registry = Registry()

    @registry.task()
    def crunch(payload: int, ctx: TaskContext) -> str:
        assert threading.current_thread() is not threading.main_thread()
        for n in range(payload):
            ctx.progress(n + 1, "crunching")
            if n % 1000 == 0:
                log.warning("at %d", n)
        ctx.log("done crunching", level="info")
        time.sleep(0.3)
        return "ok"

    await start_worker(registry)
    task = await client.enqueue("crunch", 5000)
    done = await client.wait(task.id, timeout=20)
    assert done.progress is not None
    assert done.progress.value == 5000
    lines = await client.logs(task.id)
    assert [line.message for line in lines] == [
        *(f"at {n}" for n in range(0, 5000, 1000)),
        "done crunching",
    ]
    assert [line.level for line in lines] == ["WARNING"] * 5 + ["INFO"]
    assert {line.attempt for line in lines} == {1}


async def test_logging_inside_an_async_handler_is_the_attempt_s_only(
    client: Client, store: Store, start_worker: StartWorker
) -> None:
    registry = Registry()

    @registry.task()
    async def first(payload: None, ctx: TaskContext) -> str:
        log.warning("from first")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("caught")
        return "ok"

    @registry.task()
    async def second(payload: None) -> str:
        log.error("from second")
        return "ok"

    await start_worker(registry)
    a, b = await client.enqueue("first"), await client.enqueue("second")
    await client.wait(a.id, timeout=10)
    await client.wait(b.id, timeout=10)
    log.warning("outside any task")
    first_lines = await client.logs(a.id)
    assert [line.message.splitlines()[0] for line in first_lines] == ["from first", "caught"]
    assert "ValueError: boom" in first_lines[1].message  # the traceback is in the line
    assert [(line.level, line.message) for line in await client.logs(b.id)] == [
        ("ERROR", "from second")
    ]
    log_events = await _events(store, a.id, "log")
    shown = [line["message"] for e in log_events for line in orjson.loads(e[b"data"])]
    assert [m.splitlines()[0] for m in shown] == ["from first", "caught"]


async def test_lines_are_capped_per_attempt_in_count_and_bytes(
    settings: Settings, redis_url: str
) -> None:
    capped = settings.model_copy(update={"task_log_lines": 5, "task_log_line_bytes": 20})
    store = Store(connect(redis_url), capped)
    client = Client(store)
    registry = Registry()

    @registry.task(max_retries=1)
    async def chatty(payload: None, ctx: TaskContext) -> str:
        for n in range(12):
            ctx.log(f"attempt {ctx.attempt} line {n}")
        ctx.log("é" * 30)
        if ctx.attempt == 1:
            raise RuntimeError("again")
        return "ok"

    worker = Worker(registry, store)
    running = asyncio.create_task(worker.run(install_signals=False))
    try:
        task = await client.enqueue("chatty")
        await client.wait(task.id, timeout=10)
        lines = await client.logs(task.id)
    finally:
        worker.stop()
        await running
        await store.close()
    for attempt in (1, 2):
        mine = [line.message for line in lines if line.attempt == attempt]
        assert mine[:4] == [f"attempt {attempt} line {n}" for n in range(8, 12)]
        assert mine[4] == "é" * 8 + "…"
        assert len(mine[4].encode()) <= 20
    assert len(lines) == 10


async def test_a_write_with_a_stale_token_changes_nothing(store: Store, client: Client) -> None:
    task = await client.enqueue("anything")
    (first,) = (await store.leases.dequeue("default", 1, "worker-that-will-die")).leases
    line = encode_line(1, 1, "INFO", "first", 100)
    assert await store.reports.write(
        "default", task.id, first.token, encode_progress(1, None, 1, 1), [line]
    )
    leased: list[Lease] = []

    async def releases() -> bool:
        leased[:] = (await store.leases.dequeue("default", 1, "second-worker")).leases
        return bool(leased)

    await eventually(releases)  # once the first lease lapses
    assert leased[0].token != first.token
    before = await client.get(task.id)
    counts = [len(await _events(store, task.id, name)) for name in ("progress", "log")]
    late = encode_line(1, 2, "INFO", "late", 100)
    refused = await store.reports.write(
        "default", task.id, first.token, encode_progress(2, "late", 1, 2), [late], "succeeded"
    )
    assert refused is False
    assert await client.get(task.id) == before
    assert [line.message for line in await client.logs(task.id)] == ["first"]
    assert [len(await _events(store, task.id, name)) for name in ("progress", "log")] == counts
    key = store.keys.task_log("default", task.id, 1)
    assert await store.redis.pttl(key) > running_ttl(store) - 60_000  # not the result TTL
    # The attempt that holds the lease now writes.
    now = encode_progress(0.1, None, 2, 3)
    assert await store.reports.write("default", task.id, leased[0].token, now, [])


def running_ttl(store: Store) -> int:
    return max(store.settings.result_ttl, store.settings.failed_ttl)


async def test_writes_of_a_worker_that_lost_its_lease_are_refused(
    client: Client, store: Store, start_worker: StartWorker
) -> None:
    registry = Registry()
    go = asyncio.Event()
    seen: list[TaskContext] = []

    @registry.task()
    async def slow(payload: None, ctx: TaskContext) -> str:
        seen.append(ctx)
        ctx.log("before")
        await go.wait()
        ctx.log("after the lease was lost")
        ctx.progress(1.0, "too late")
        return "ok"

    await start_worker(registry)
    task = await client.enqueue("slow")

    async def logged() -> bool:
        return len(await client.logs(task.id)) == 1

    await eventually(logged)
    # Another worker takes the task over: its token replaces the first worker's.
    await store.redis.hset(store.keys.task("default", task.id), "tok", b"someone-else")
    go.set()

    async def answered() -> bool:
        report = seen[0].report
        return report is not None and report._closed

    await eventually(answered)
    found = await client.get(task.id)
    assert found is not None
    assert found.progress is None
    assert [line.message for line in await client.logs(task.id)] == ["before"]


async def test_logs_survive_a_killed_worker(
    client: Client, store: Store, settings: Settings, workers: list[WorkerProcess]
) -> None:
    workers.append(WorkerProcess(settings, "report_tasks"))
    task = await client.enqueue("log_then_sleep", 6)

    async def written() -> bool:
        found = await client.get(task.id)
        return (
            found is not None
            and found.progress is not None
            and len(await client.logs(task.id)) == 6
        )

    await eventually(written, timeout=20)
    workers[0].signal(signal.SIGKILL)
    workers[0].wait()
    lines = await client.logs(task.id)
    assert [line.message for line in lines] == [f"line {n}" for n in range(6)]
    assert [line.level for line in lines] == ["INFO", "WARNING"] * 3
    found = await client.get(task.id)
    assert found is not None
    assert found.progress is not None
    assert (found.progress.value, found.progress.message) == (0.5, "halfway")
    key = store.keys.task_log("default", task.id, 1)
    assert await store.redis.pttl(key) > 0  # expires, though no answer came


async def test_deleting_a_task_deletes_its_log_lists(
    client: Client, store: Store, start_worker: StartWorker
) -> None:
    registry = Registry()

    @registry.task()
    async def noted(payload: None, ctx: TaskContext) -> str:
        ctx.log("a line")
        return "ok"

    await start_worker(registry)
    task = await client.enqueue("noted")
    await client.wait(task.id, timeout=10)
    key = store.keys.task_log("default", task.id, 1)
    assert await store.redis.exists(key)
    ttl = await store.redis.pttl(key)
    assert store.settings.result_ttl - 60_000 < ttl <= store.settings.result_ttl  # the task's
    assert await client.delete("default", "succeeded", [task.id]) == 1
    assert not await store.redis.exists(key)
