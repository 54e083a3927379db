"""Schedules run each tick exactly once, with no leader: the compare-and-advance of the
fire script, many workers polling at once, the misfire policies at Redis's time, pause
and resume, overlap, and the idle cost of many schedules."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import UTC, datetime, timedelta

import pytest

from arqd.client import Client
from arqd.core.schedules import Misfire, Schedule, next_fire
from arqd.core.task import TaskStatus
from arqd.store.codec import text
from arqd.store.schedules import Tick
from arqd.store.store import Store
from arqd.worker import Registry
from arqd.worker.scheduling import Scheduler
from arqd.worker.storage import WorkerStore
from conftest import StartWorker, eventually

pytestmark = pytest.mark.topologies()  # every topology: a schedule lives in its queue's slot


def now() -> datetime:
    return datetime.now(UTC)


async def schedule_tasks(store: Store, queue: str, name: str) -> list[str]:
    """The ids of the tasks the schedule ``name`` enqueued on ``queue``, oldest tick first."""
    found: list[str] = []
    for status in ("scheduled", "succeeded", "failed", "active"):
        found += map(text, await store.redis.zrange(store.keys.index(queue, status), 0, -1))
    found += map(text, await store.redis.lrange(store.keys.ready(queue, 0), 0, -1))
    found = [i for i in found if i.startswith(f"s:{name}:")]
    return sorted(set(found), key=lambda i: int(i.rsplit(":", 1)[1]))


async def test_of_many_fires_of_one_tick_exactly_one_enqueues(store: Store) -> None:
    schedule = Schedule("race", "job", every=60, queue=store.settings.queue, payload={"n": 1})
    await store.schedules.upsert(schedule, now() - timedelta(seconds=1))
    poll = await store.schedules.poll([store.settings.queue])
    (found,) = poll.due
    following = next_fire(schedule, poll.now)
    tick = Tick(f"s:race:{int(found.tick.timestamp() * 1000)}", found.tick)
    outcomes = await asyncio.gather(
        *(store.schedules.fire(found, [tick], following, 0) for _ in range(20))
    )
    assert sorted(outcomes) == ["fired"] + ["stale"] * 19
    state = await store.schedules.get("race")
    assert state is not None
    assert state.runs == 1
    assert state.next_run == following
    assert state.last_task == tick.task_id
    assert (await store.schedules.poll([store.settings.queue])).due == []


@pytest.mark.parametrize("count", [1, 10])
async def test_workers_run_a_one_second_schedule_once_per_tick(
    store: Store, client: Client, start_worker: StartWorker, count: int
) -> None:
    seen: list[int] = []
    registries = []
    for _ in range(count):  # each worker declares the schedule
        registry = Registry()

        @registry.cron(every=1, name="beat", payload=7)
        async def beat(payload: int) -> None:
            seen.append(payload)

        registries.append(registry)
    workers = [await start_worker(r) for r in registries]
    queue = store.settings.queue

    async def three_done() -> bool:
        return len(await schedule_tasks(store, queue, "beat")) >= 4

    await eventually(three_done, timeout=15)
    ids = await schedule_tasks(store, queue, "beat")
    ticks = [int(i.rsplit(":", 1)[1]) for i in ids]
    assert all(b - a == 1000 for a, b in itertools.pairwise(ticks))
    fired = sum(w.scheduler.fired for w in workers if w.scheduler is not None)
    state = await client.get(ids[0])
    assert state is not None
    assert state.type == "beat"
    assert fired == (await store.schedules.get("beat")).runs  # type: ignore[union-attr]
    assert fired >= len(ids)
    assert set(seen) == {7}


async def test_missed_ticks_coalesce_into_one_run_and_an_event(store: Store) -> None:
    queue = store.settings.queue
    schedule = Schedule("late", "job", every=1, queue=queue)
    await store.schedules.upsert(schedule, now() - timedelta(seconds=10))
    scheduler = Scheduler(WorkerStore(store, "w", []), [queue], [], asyncio.Event())
    await scheduler.step()
    ids = await schedule_tasks(store, queue, "late")
    assert len(ids) == 1
    state = await store.schedules.get("late")
    assert state is not None
    assert 9 <= state.dropped <= 11
    assert state.runs == 1
    entries = await store.events.read_after({queue: "0-0"}, block_ms=1, count=100)
    misfires = [e for e in entries if e.fields[b"event"] == b"schedule_misfired"]
    assert len(misfires) == 1
    assert b'"dropped":' in misfires[0].fields[b"error"]


async def test_misfire_all_runs_each_missed_tick_up_to_its_bound(store: Store) -> None:
    queue = store.settings.queue
    schedule = Schedule("catchup", "job", every=1, queue=queue, misfire=Misfire.ALL, catch_up=5)
    await store.schedules.upsert(schedule, now() - timedelta(seconds=10))
    scheduler = Scheduler(WorkerStore(store, "w", []), [queue], [], asyncio.Event())
    await scheduler.step()
    assert len(await schedule_tasks(store, queue, "catchup")) == 5


async def test_a_paused_schedule_does_not_fire_and_resumes_from_now(store: Store) -> None:
    queue = store.settings.queue
    schedule = Schedule("held", "job", every=1, queue=queue)
    await store.schedules.upsert(schedule, now() - timedelta(seconds=5))
    assert await store.schedules.pause(queue, "held", "maintenance")
    assert not await store.schedules.pause(queue, "held", "again")  # already paused
    scheduler = Scheduler(WorkerStore(store, "w", []), [queue], [], asyncio.Event())
    await scheduler.step()
    assert await schedule_tasks(store, queue, "held") == []
    state = await store.schedules.get("held")
    assert state is not None
    assert state.paused
    assert state.reason == "maintenance"
    assert state.next_run is None
    # An unchanged upsert (a worker restarting) keeps it paused.
    assert not await store.schedules.upsert(schedule, now())
    assert (await store.schedules.get("held")).paused  # type: ignore[union-attr]
    resumed_at = now()
    assert await store.schedules.resume(queue, "held", next_fire(schedule, resumed_at))
    state = await store.schedules.get("held")
    assert state is not None
    assert not state.paused
    assert state.next_run is not None
    assert state.next_run > resumed_at


async def test_a_run_is_skipped_while_the_previous_one_is_active(
    store: Store, start_worker: StartWorker
) -> None:
    release = asyncio.Event()
    registry = Registry()

    @registry.cron(every=1, name="exclusive", overlap=False)
    async def long_job(payload: None) -> None:
        await release.wait()

    await start_worker(registry)

    async def skipped() -> bool:
        state = await store.schedules.get("exclusive")
        return state is not None and state.skipped >= 2

    await eventually(skipped, timeout=15)
    assert len(await schedule_tasks(store, store.settings.queue, "exclusive")) == 1
    release.set()


async def test_a_changed_definition_replaces_the_next_time_and_stale_fires_lose(
    store: Store,
) -> None:
    queue = store.settings.queue
    first = Schedule("edit", "job", every=60, queue=queue)
    await store.schedules.upsert(first, now() - timedelta(seconds=1))
    (found,) = (await store.schedules.poll([queue])).due
    second = Schedule("edit", "job", every=120, queue=queue)
    later = now() + timedelta(hours=1)
    assert await store.schedules.upsert(second, later)
    tick = Tick("s:edit:1", found.tick)
    assert await store.schedules.fire(found, [tick], later, 0) == "stale"
    state = await store.schedules.get("edit")
    assert state is not None
    assert state.schedule == second
    assert state.next_run is not None
    assert abs((state.next_run - later).total_seconds()) < 0.01


async def test_a_thousand_idle_schedules_cost_about_one_call_a_second(store: Store) -> None:
    queue = store.settings.queue
    hour = now() + timedelta(hours=1)
    for first in range(0, 1000, 50):  # redis-py's cluster client opens a connection a call
        await asyncio.gather(
            *(
                store.schedules.upsert(Schedule(f"idle{i}", "job", every=3600, queue=queue), hour)
                for i in range(first, first + 50)
            )
        )
    polls = 0
    worker_store = WorkerStore(store, "w", [])
    real_poll = worker_store.poll_schedules

    async def counted(queues: list[str]) -> object:
        nonlocal polls
        polls += 1
        return await real_poll(queues)

    worker_store.poll_schedules = counted  # type: ignore[method-assign,assignment]
    stopping = asyncio.Event()
    scheduler = Scheduler(worker_store, [queue], [], stopping)
    running = asyncio.create_task(scheduler.run())
    started = time.monotonic()
    await asyncio.sleep(3.2)
    stopping.set()
    await running
    # One script call a poll (one queue, one slot), one poll a second while idle.
    assert polls <= (time.monotonic() - started) + 1
    assert scheduler.fired == 0
    assert (await store.schedules.poll([queue])).soonest is not None


async def test_a_schedule_s_task_is_a_task_like_any_other(
    store: Store, client: Client, start_worker: StartWorker
) -> None:
    registry = Registry()

    @registry.cron(every=1, name="greet", payload="hi", priority=5)
    async def greet(payload: str) -> str:
        return payload * 2

    await start_worker(registry)

    async def one_done() -> bool:
        ids = await schedule_tasks(store, store.settings.queue, "greet")
        if not ids:
            return False
        task = await client.get(ids[0])
        return task is not None and task.status is TaskStatus.SUCCEEDED

    await eventually(one_done, timeout=10)
    task = await client.get((await schedule_tasks(store, store.settings.queue, "greet"))[0])
    assert task is not None
    assert task.result == "hihi"
    assert task.priority == 5
