"""Tasks finished per minute: the finish script counts what succeeded and what failed for
good in per-minute buckets of the queue, which expire, and the client reads them back."""

from __future__ import annotations

import asyncio

import pytest

from arqd import demo
from arqd.client import Client, NewTask
from arqd.core.errors import InvalidTask
from arqd.core.lease import Answer
from arqd.store.codec import error_json
from arqd.store.history import KEPT_MINUTES
from arqd.store.nodes import slot_of
from arqd.store.store import Store
from conftest import StartWorker

pytestmark = pytest.mark.topologies()  # the engine's behaviour on every topology

HOUR_MS = 3_600_000


async def redis_seconds(store: Store, queue: str = "default") -> float:
    seconds, micros = await store.nodes.call(store.keys.queue(queue), "TIME")
    return int(seconds) + int(micros) / 1e6


async def redis_minute(store: Store) -> int:
    """The minute (since the epoch) Redis's clock is in."""
    return int(await redis_seconds(store) // 60)


async def test_tasks_that_succeed_and_fail_are_counted_in_their_minute(
    client: Client, store: Store, start_worker: StartWorker
) -> None:
    minute = await redis_minute(store)
    await start_worker(demo.registry)
    tasks = await client.enqueue_many(
        [
            *[NewTask("echo", n) for n in range(5)],
            NewTask("fail", None, max_retries=0),
            NewTask("fail", {"times": 1}, max_retries=1),  # a retry, then succeeds
            NewTask("fail", None, max_retries=1),  # a retry, then fails for good
        ]  # four failed attempts: fewer than open the type's breaker (5 in a row)
    )
    for task in tasks:
        await client.wait(task.id, timeout=20)
    seen = await client.throughput("default", 60)
    later = await redis_minute(store)
    assert len(seen.succeeded) == len(seen.failed) == 60
    assert int(seen.start.timestamp()) // 60 == later - 59
    assert (seen.total_succeeded, seen.total_failed) == (6, 2)  # retries are not failures
    if later == minute:  # no minute began meanwhile: they are all in the last one
        assert (seen.succeeded[-1], seen.failed[-1]) == (6, 2)


async def test_each_batch_adds_its_outcomes_and_nothing_else(client: Client, store: Store) -> None:
    await client.enqueue_many([NewTask("t", n) for n in range(7)])
    leases = (await store.leases.dequeue("default", 7, "w")).leases
    error = error_json("E", "no", None)
    answers = [
        Answer(leases[0], "succeeded", b"1"),
        Answer(leases[1], "succeeded", b"1"),
        Answer(leases[2], "failed", error),
        Answer(leases[3], "retry", error, delay_ms=60_000),
        Answer(leases[4], "cancelled"),
        Answer(leases[5], "returned"),
    ]
    assert await store.leases.finish("default", answers) == [True] * 6
    # Sent again (a lost reply): refused by the tokens, so counted once.
    assert await store.leases.finish("default", answers[:3]) == [False] * 3
    assert await store.leases.finish("default", [Answer(leases[6], "succeeded", b"1")]) == [True]
    seen = await client.throughput("default", 2)  # a minute may have begun meanwhile
    assert (seen.total_succeeded, seen.total_failed) == (3, 1)
    other = await client.throughput("other", 5)
    assert (other.total_succeeded, other.total_failed) == (0, 0)


async def test_an_hour_of_buckets_is_one_hash_that_expires_after_a_day(
    client: Client, store: Store
) -> None:
    await client.enqueue("t")
    leases = (await store.leases.dequeue("default", 1, "w")).leases
    await store.leases.finish("default", [Answer(leases[0], "succeeded", b"1")])
    hour = int(await redis_seconds(store) * 1000) // HOUR_MS
    key = store.keys.throughput("default", hour)
    assert slot_of(key) == store.keys.slot("default")  # in the queue's slot
    assert 24 * HOUR_MS < await store.redis.pttl(key) <= 26 * HOUR_MS
    assert len(await store.redis.hgetall(key)) == 1


async def test_a_day_at_most_is_read(client: Client) -> None:
    day = await client.throughput("default")
    assert len(day.succeeded) == KEPT_MINUTES
    assert (day.end - day.start).total_seconds() == KEPT_MINUTES * 60
    with pytest.raises(InvalidTask):
        await client.throughput("default", KEPT_MINUTES + 1)


async def test_memory_is_read_from_each_master(client: Client, topology: str) -> None:
    found = await client.memory()
    assert len(found) == (3 if topology == "cluster" else 1)
    assert [m.master for m in found] == sorted({m.master for m in found})
    assert all(m.used > 0 and m.limit is None for m in found)
    if topology != "cluster":
        assert found[0].master == (await client.placement("default"))[1]


async def test_a_task_whose_last_lease_lapsed_counts_as_failed(
    client: Client, store: Store
) -> None:
    await client.enqueue("t", max_retries=0)
    assert (await store.leases.dequeue("default", 1, "gone")).leases  # its worker dies
    await asyncio.sleep(store.settings.lease_timeout / 1000 + 0.1)
    await store.leases.dequeue("default", 1, "other")  # reclaims it: to the dead letters
    seen = await client.throughput("default", 2)
    assert (seen.total_succeeded, seen.total_failed) == (0, 1)
