"""Deduplication by key, each mode against a real Redis: a later enqueue with the same key
returns the task the key kept while the mode says it blocks, and every such refusal is a
``deduplicated`` event that names the kept task."""

from __future__ import annotations

import asyncio
import time

import pytest

from arqd.client import Client, NewTask
from arqd.core.dedupe import Dedupe
from arqd.core.errors import InvalidTask
from arqd.core.lease import Answer
from arqd.core.settings import Settings
from arqd.core.task import Task, TaskStatus
from arqd.store.codec import error_json
from arqd.store.store import Store
from arqd.sync import SyncClient
from arqd.worker import Registry
from conftest import StartWorker, eventually

QUEUE = "default"


async def deduplicated(store: Store, queue: str = QUEUE) -> list[dict[str, str]]:
    """The ``deduplicated`` events of ``queue`` so far, oldest first, as text."""
    entries = await store.events.read_after({queue: "0-0"}, block_ms=1, count=10_000)
    events = [{k.decode(): v.decode() for k, v in e.fields.items()} for e in entries]
    return [e for e in events if e["event"] == "deduplicated"]


async def start(store: Store, task: Task) -> Answer:
    """Lease ``task`` (the only ready one) as a worker would; the answer to finish it."""
    (lease,) = (await store.leases.dequeue(task.queue, 1, "test-worker")).leases
    assert lease.id == task.id
    return Answer(lease, "succeeded", b"null")


async def key_lapsed(store: Store, key: str) -> None:
    async def lapsed() -> bool:
        return await store.redis.exists(store.keys.dedupe(QUEUE, key)) == 0

    await eventually(lapsed)


@pytest.mark.topologies
async def test_until_finished_keeps_the_task_until_it_has_finished(
    client: Client, store: Store
) -> None:
    once = Dedupe("report-7", "until_finished")
    first = await client.enqueue("report", 1, dedupe=once)
    assert (await client.enqueue("report", 2, dedupe=once)).id == first.id
    answer = await start(store, first)
    running = await client.enqueue("report", 3, dedupe=once)
    assert (running.id, running.status, running.payload) == (first.id, TaskStatus.ACTIVE, 1)
    assert await store.leases.finish(QUEUE, [answer]) == [True]
    after = await client.enqueue("report", 4, dedupe=once)
    assert after.id != first.id
    assert after.payload == 4
    events = await deduplicated(store)
    assert [(e["task"], e["status"], e["mode"]) for e in events] == [
        (first.id, "queued", "until_finished"),
        (first.id, "active", "until_finished"),
    ]
    assert all(e["refused"] != first.id for e in events)


async def test_until_started_keeps_a_waiting_task_until_it_starts(
    client: Client, store: Store
) -> None:
    waiting = Dedupe("sync-a", "until_started")
    first = await client.enqueue("sync", 1, dedupe=waiting)
    again = await client.enqueue("sync", 2, dedupe=waiting)
    assert (again.id, again.payload) == (first.id, 1)
    answer = await start(store, first)
    second = await client.enqueue("sync", 3, dedupe=waiting)
    assert second.id != first.id
    # Handed back unfinished, the first is queued again, but it has started: it keeps
    # nothing. The key names the second, which still waits.
    returned = Answer(answer.lease, "returned")
    assert await store.leases.finish(QUEUE, [returned]) == [True]
    assert (await client.enqueue("sync", 4, dedupe=waiting)).id == second.id
    scheduled = await client.enqueue("sync", 5, delay=60, dedupe=Dedupe("sync-b", "until_started"))
    again = await client.enqueue("sync", 6, dedupe=Dedupe("sync-b", "until_started"))
    assert (again.id, again.status) == (scheduled.id, TaskStatus.SCHEDULED)
    # The key outlives the task's delay by the idempotency TTL (it only bounds memory).
    keep = await store.redis.pttl(store.keys.dedupe(QUEUE, "sync-b"))
    assert store.settings.idempotency_ttl < keep <= store.settings.idempotency_ttl + 60_000
    events = await deduplicated(store)
    assert [(e["task"], e["status"]) for e in events] == [
        (first.id, "queued"),
        (second.id, "queued"),
        (scheduled.id, "scheduled"),
    ]


async def test_until_finished_holds_through_a_retry_backoff(client: Client, store: Store) -> None:
    once = Dedupe("charge-1", "until_finished")
    first = await client.enqueue("charge", 1, dedupe=once)
    answer = await start(store, first)
    retry = Answer(answer.lease, "retry", error_json("E", "boom", None), delay_ms=60_000)
    assert await store.leases.finish(QUEUE, [retry]) == [True]
    backing_off = await client.enqueue("charge", 2, dedupe=once)
    assert (backing_off.id, backing_off.status) == (first.id, TaskStatus.SCHEDULED)
    # until_started would not wait for it: it has started once.
    other = await client.enqueue("charge", 3, dedupe=Dedupe("charge-1", "until_started"))
    assert other.id != first.id


async def test_a_cancelled_or_deleted_task_keeps_nothing(client: Client) -> None:
    once = Dedupe("k", "until_finished")
    first = await client.enqueue("job", 1, dedupe=once)
    await client.cancel(first.id, QUEUE)
    second = await client.enqueue("job", 2, dedupe=once)
    assert second.id != first.id
    throttle = Dedupe("t", "throttle", window=60)
    kept = await client.enqueue("job", 3, dedupe=throttle)
    await client.cancel(kept.id, QUEUE)
    assert await client.delete(QUEUE, "cancelled", [kept.id]) == 1
    assert (await client.enqueue("job", 4, dedupe=throttle)).id != kept.id


async def test_throttle_keeps_one_task_a_window_whatever_its_status(
    client: Client, store: Store
) -> None:
    throttle = Dedupe("mail-3", "throttle", window=0.5)
    first = await client.enqueue("mail", 1, dedupe=throttle)
    assert await store.leases.finish(QUEUE, [await start(store, first)]) == [True]
    within = await client.enqueue("mail", 2, dedupe=throttle)
    assert (within.id, within.status) == (first.id, TaskStatus.SUCCEEDED)
    ttl = await store.redis.pttl(store.keys.dedupe(QUEUE, "mail-3"))
    assert 0 < ttl <= 500  # a refusal does not extend the window
    await key_lapsed(store, "mail-3")
    after = await client.enqueue("mail", 3, dedupe=throttle)
    assert after.id != first.id
    (event,) = await deduplicated(store)
    assert (event["task"], event["status"], event["mode"]) == (first.id, "succeeded", "throttle")
    assert event["refused"] not in (first.id, after.id)


async def test_debounce_keeps_one_scheduled_task_with_the_last_payload(
    client: Client, store: Store
) -> None:
    debounce = Dedupe("search-index", "debounce", window=30)
    first = await client.enqueue("index", {"n": 1}, dedupe=debounce)
    assert first.status is TaskStatus.SCHEDULED
    stored = await client.get(first.id, QUEUE)
    assert stored is not None
    assert stored.scheduled_at is not None
    later = await client.enqueue("index", {"n": 2}, dedupe=debounce, priority=5)
    assert (later.id, later.payload, later.status) == (first.id, {"n": 2}, TaskStatus.SCHEDULED)
    assert later.priority == 0  # only the payload and the due time change
    assert later.scheduled_at is not None
    assert later.scheduled_at >= stored.scheduled_at
    due = await store.redis.zscore(store.keys.index(QUEUE, "scheduled"), first.id)
    assert due == int(later.scheduled_at.timestamp() * 1000)
    (stats,) = await client.stats(QUEUE)
    assert (stats.scheduled, stats.queued) == (1, 0)
    (event,) = await deduplicated(store)
    assert (event["task"], event["status"], event["mode"]) == (first.id, "scheduled", "debounce")


async def test_debounce_starts_afresh_once_the_kept_task_is_no_longer_waiting(
    client: Client, store: Store
) -> None:
    debounce = Dedupe("d", "debounce", window=60)
    first = await client.enqueue("index", 1, dedupe=debounce)
    assert (await client.run_now(first.id, QUEUE)).status is TaskStatus.QUEUED
    second = await client.enqueue("index", 2, dedupe=debounce)
    assert second.id != first.id
    assert second.status is TaskStatus.SCHEDULED
    assert (await client.get(first.id, QUEUE)).payload == 1  # type: ignore[union-attr]


async def test_a_batch_and_an_idempotency_key_agree_with_the_dedupe_key(
    client: Client, store: Store
) -> None:
    once = Dedupe("batch", "until_finished")
    tasks = await client.enqueue_many(
        [NewTask("job", 1, dedupe=once), NewTask("job", 2), NewTask("job", 3, dedupe=once)]
    )
    assert tasks[2].id == tasks[0].id != tasks[1].id
    assert tasks[2].payload == 1
    # A refused enqueue's idempotency key names the kept task: its repeat gets the same.
    kept = await client.enqueue("job", 4, dedupe=once, idempotency_key="idem-4")
    assert kept.id == tasks[0].id
    found = await client.by_idempotency_key(QUEUE, "idem-4")
    assert found is not None
    assert found.id == tasks[0].id


async def test_a_resent_enqueue_is_not_a_refusal(client: Client, store: Store) -> None:
    task = NewTask("job", 1, dedupe=Dedupe("resend", "until_finished"))
    first = await client.enqueue_task(task)
    again = await client.enqueue_task(task)  # the same id: as after a lost reply
    assert again.id == first.id == task.id
    assert await deduplicated(store) == []


def test_the_sync_client_deduplicates_too(settings: Settings) -> None:
    with SyncClient(settings) as sync:
        throttle = Dedupe("sync", "throttle", window=60)
        first = sync.enqueue("job", 1, dedupe=throttle)
        assert sync.enqueue("job", 2, dedupe=throttle).id == first.id
        with pytest.raises(InvalidTask, match="debounce"):
            sync.enqueue("job", 3, delay=1, dedupe=Dedupe("x", "debounce", window=1))


async def test_ten_debounced_enqueues_within_a_second_run_once_with_the_last_payload(
    client: Client, store: Store, start_worker: StartWorker
) -> None:
    ran: list[tuple[int, float]] = []
    done = asyncio.Event()
    registry = Registry()

    @registry.task()
    async def rebuild(payload: int) -> None:
        ran.append((payload, time.monotonic()))
        done.set()

    await start_worker(registry)
    debounce = Dedupe("rebuild", "debounce", window=0.8)
    kept = set()
    for n in range(10):  # one every 0.1 s: each well within the window of the one before
        last = time.monotonic()
        kept.add((await client.enqueue("rebuild", n, dedupe=debounce)).id)
        if n < 9:
            await asyncio.sleep(0.1)
    await asyncio.wait_for(done.wait(), 10)
    (task_id,) = kept
    assert (await client.wait(task_id, timeout=10)).status is TaskStatus.SUCCEEDED
    assert [payload for payload, _ in ran] == [9]
    assert ran[0][1] >= last + 0.8 - 0.01  # due a window after the last enqueue
    (stats,) = await client.stats(QUEUE)
    assert (stats.succeeded, stats.queued, stats.scheduled, stats.active) == (1, 0, 0, 0)
    assert len(await deduplicated(store)) == 9
