"""Pausing and resuming a queue, or one task type of it (``Client.queues``): after the
pause returns no task of it starts, running ones finish, delayed ones still fall due, and
a resume starts the backlog at once."""

from __future__ import annotations

import asyncio
import time

import pytest

from arqd.client import Client, NewTask
from arqd.core.errors import InvalidTask
from arqd.core.lease import Answer
from arqd.core.settings import Settings
from arqd.core.task import TaskStatus
from arqd.observability.metrics import Metrics
from arqd.store.connection import connect
from arqd.store.store import Store
from arqd.worker import Registry
from conftest import StartWorker, eventually, task_events, until_blocked

pytestmark = pytest.mark.topologies()  # the engine's behaviour on every topology


async def _dequeue_until_paused_seen(
    settings: Settings, paused: asyncio.Event, leased_after: list[str]
) -> int:
    """One worker asking for tasks as fast as it can, on a connection of its own; tasks
    leased by a call sent after the pause returned go to ``leased_after``. Returns how
    many it leased in all, once it has asked three times after the pause."""
    store = Store(connect(settings.redis_url or ""), settings)
    leased, asked_after = 0, 0
    try:
        while asked_after < 3:
            after = paused.is_set()
            fetched = await store.leases.dequeue("default", 5, "w")
            leased += len(fetched.leases)
            if after:
                asked_after += 1
                leased_after += [lease.id for lease in fetched.leases]
        return leased
    finally:
        await store.close()


async def test_no_task_starts_once_the_pause_has_returned(
    client: Client, settings: Settings
) -> None:
    await client.enqueue_many([NewTask("t") for _ in range(2000)])
    paused, leased_after = asyncio.Event(), list[str]()
    askers = [
        asyncio.create_task(_dequeue_until_paused_seen(settings, paused, leased_after))
        for _ in range(4)
    ]
    await asyncio.sleep(0.05)  # the four are leasing when the pause comes
    state = await client.queues.pause("default", reason="deploying")
    paused.set()
    leased = sum(await asyncio.gather(*askers))
    assert leased_after == []
    assert state.paused
    assert state.whole is not None
    assert state.whole.reason == "deploying"
    (stats,) = await client.stats("default")
    assert stats.paused
    assert (stats.queued, stats.active) == (2000 - leased, leased)


async def test_running_tasks_finish_and_delayed_ones_fall_due_into_a_paused_queue(
    client: Client, store: Store
) -> None:
    running = await client.enqueue("t")
    (lease,) = (await store.leases.dequeue("default", 1, "w")).leases
    await client.queues.pause("default", reason="maintenance")
    delayed = await client.enqueue("t", delay=0.05)
    assert await store.leases.finish("default", [Answer(lease, "succeeded", b"null")])
    finished = await client.get(running.id)
    assert finished is not None
    assert finished.status is TaskStatus.SUCCEEDED

    async def fell_due() -> bool:
        fetched = await store.leases.dequeue("default", 10, "w")  # as an idle worker would
        assert fetched.leases == []
        task = await client.get(delayed.id)
        return task is not None and task.status is TaskStatus.QUEUED

    await eventually(fell_due, timeout=5)
    await client.queues.resume("default")
    (taken,) = (await store.leases.dequeue("default", 10, "w")).leases
    assert taken.id == delayed.id


async def test_lapsed_leases_are_reclaimed_while_paused(client: Client, store: Store) -> None:
    task = await client.enqueue("t")
    assert len((await store.leases.dequeue("default", 1, "w")).leases) == 1
    await client.queues.pause("default")

    async def reclaimed() -> bool:
        assert (await store.leases.dequeue("default", 1, "w")).leases == []
        return "lease_expired" in await task_events(store, "default", task.id)

    await eventually(reclaimed, timeout=10)  # the lease timeout is 1.5 s
    (stats,) = await client.stats("default")
    assert (stats.queued, stats.active) == (1, 0)


async def test_a_paused_type_is_held_while_other_types_flow(client: Client, store: Store) -> None:
    await client.queues.pause("default", task_type="emails", reason="provider down")
    await client.enqueue_many([NewTask("emails") for _ in range(3)] + [NewTask("sms")])
    fetched = await store.leases.dequeue("default", 10, "w")
    assert [lease.type for lease in fetched.leases] == ["sms"]
    assert fetched.held_by_pause == 3
    (stats,) = await client.stats("default")
    assert not stats.paused
    assert (stats.queued, stats.held["paused"]) == (3, 3)
    state = await client.queues.paused("default")
    assert [(p.task_type, p.reason) for p in state.types] == [("emails", "provider down")]
    assert state.to_dict()["paused_types"][0]["type"] == "emails"

    await client.queues.resume("default", task_type="emails")
    fetched = await store.leases.dequeue("default", 10, "w")
    assert [lease.type for lease in fetched.leases] == ["emails"] * 3
    assert (await client.queues.paused("default")).types == ()


async def test_pause_and_resume_are_events_with_their_reason(client: Client, store: Store) -> None:
    await client.enqueue("t")  # the queue's stream exists
    await client.queues.pause("default", reason="deploy 42", by="ops")
    await client.queues.pause("default", task_type="emails", reason="quota")
    await client.queues.resume("default", task_type="emails", reason="quota back")
    again = await client.queues.resume("default")
    assert not again.paused
    assert again.types == ()
    entries = await store.events.read_after({"default": "0-0"}, block_ms=1, count=100)
    seen = [
        (e.fields[b"event"], e.fields[b"type"], e.fields.get(b"reason"), e.status)
        for e in entries
        if e.fields[b"task"] == b""
    ]
    assert seen == [
        (b"queue_paused", b"", b"deploy 42", "paused"),
        (b"queue_paused", b"emails", b"quota", "paused"),
        (b"queue_resumed", b"emails", b"quota back", "running"),
        (b"queue_resumed", b"", b"", "running"),
    ]


async def test_pausing_twice_keeps_one_pause_with_the_new_reason(client: Client) -> None:
    await client.queues.pause("default", reason="first", by="ops")
    state = await client.queues.pause("default", reason="second")
    assert state.whole is not None
    assert (state.whole.reason, state.whole.by) == ("second", None)
    assert not (await client.queues.resume("default")).paused
    assert not (await client.queues.resume("default")).paused  # resuming again is no error


@pytest.mark.parametrize(
    ("queue", "task_type", "reason", "message"),
    [
        ("no spaces", None, "", "invalid queue name 'no spaces'"),
        ("default", "9lives", "", "invalid task type '9lives'"),
        ("default", "*", "", "invalid task type"),
        ("default", None, "x" * 501, "reason must be text of at most 500 characters"),
    ],
)
async def test_pause_refuses_bad_names_and_reasons(
    client: Client, queue: str, task_type: str | None, reason: str, message: str
) -> None:
    with pytest.raises(InvalidTask, match=message):
        await client.queues.pause(queue, task_type=task_type, reason=reason)
    with pytest.raises(InvalidTask, match=message):
        await client.queues.resume(queue, task_type=task_type, reason=reason)


@pytest.mark.topologies("standalone")
async def test_resume_starts_the_backlog_of_idle_workers_at_once(
    client: Client, store: Store, start_worker: StartWorker
) -> None:
    registry = Registry()
    first = asyncio.Event()
    starts: list[float] = []

    @registry.task()
    async def job(payload: None) -> None:
        starts.append(time.monotonic())
        first.set()

    await client.queues.pause("default", reason="backlog test")
    tasks = await client.enqueue_many([NewTask("job") for _ in range(50)])
    for _ in range(4):
        await start_worker(registry, concurrency=8)
    await until_blocked(store.redis, 4)  # idle: each asked, got nothing, and waits
    assert not first.is_set()
    resumed = time.monotonic()
    await client.queues.resume("default")
    await asyncio.wait_for(first.wait(), 10)
    latency_ms = (starts[0] - resumed) * 1000
    print(f"resume to first start: {latency_ms:.1f} ms")
    done = [await client.wait(t.id, timeout=30) for t in tasks]
    assert {t.status for t in done} == {TaskStatus.SUCCEEDED}


async def test_the_paused_gauge_follows_the_queue(client: Client, store: Store) -> None:
    metrics = Metrics()
    await client.enqueue("t")
    await client.queues.pause("default", reason="gauge")
    await metrics.refresh(store)
    assert metrics.registry.get_sample_value("arq_queue_paused", {"queue": "default"}) == 1
    await client.queues.resume("default")
    await metrics.refresh(store)
    assert metrics.registry.get_sample_value("arq_queue_paused", {"queue": "default"}) == 0
