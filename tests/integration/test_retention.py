"""Redis memory stays bounded: results expire, the dead-letter set and event stream are capped."""

from __future__ import annotations

from arqd.client import Client, NewTask
from arqd.core.lease import Answer
from arqd.core.settings import Settings
from arqd.core.task import TaskStatus
from arqd.store.codec import error_json
from arqd.store.connection import connect
from arqd.store.store import Store
from conftest import eventually


async def finish_all(store: Store, outcome: str, value: bytes, count: int) -> None:
    leases = (await store.leases.dequeue("default", count, "w")).leases
    assert len(leases) == count
    assert (
        await store.leases.finish("default", [Answer(lease, outcome, value) for lease in leases])
        == [True] * count
    )


async def test_results_expire_after_their_ttl(client: Client, store: Store) -> None:
    default = await client.enqueue("t")
    short = await client.enqueue("t", result_ttl=0.2)
    await finish_all(store, "succeeded", b"1", 2)
    assert 3_500_000 < await store.redis.pttl(store.keys.task("default", default.id)) <= 3_600_000

    async def expired() -> bool:
        return await client.get(short.id) is None

    await eventually(expired, timeout=5)
    assert (await client.get(default.id)) is not None


async def test_the_dead_letter_set_is_capped_dropping_the_oldest(settings: Settings) -> None:
    capped = settings.model_copy(update={"failed_max": 3})
    store = Store(connect(capped.redis_url or ""), capped)
    client = Client(store)
    try:
        tasks = await client.enqueue_many([NewTask("t", i) for i in range(5)])
        await finish_all(store, "failed", error_json("E", "no", None), 5)
        page = await client.list_tasks(status=TaskStatus.FAILED, limit=10)
        assert len(page.tasks) == 3
        kept = [await client.get(t.id) for t in tasks]
        assert sum(t is None for t in kept) == 2  # those over the cap are gone entirely
        (stats,) = await client.stats()
        assert stats.failed == 3
    finally:
        await store.redis.aclose()


async def test_a_lapsed_lease_with_no_retries_left_dead_letters(
    client: Client, store: Store
) -> None:
    task = await client.enqueue("t", max_retries=0)
    (_lease,) = (await store.leases.dequeue("default", 1, "doomed-worker")).leases

    async def reclaimed() -> bool:
        await store.leases.dequeue("default", 1, "other")
        found = await client.get(task.id)
        return found is not None and found.status is TaskStatus.FAILED

    await eventually(reclaimed, timeout=10)
    failed = await client.get(task.id)
    assert failed is not None
    assert failed.error is not None
    assert failed.error.type == "LeaseExpired"
    assert "doomed-worker" in failed.error.message


async def test_the_event_stream_is_capped(settings: Settings) -> None:
    capped = settings.model_copy(update={"events_max": 10})
    store = Store(connect(capped.redis_url or ""), capped)
    try:
        for _ in range(10):
            await Client(store).enqueue_many([NewTask("t") for _ in range(100)])
        length = await store.redis.xlen(store.keys.events("default"))
        assert length <= 10 + 100  # MAXLEN ~ trims whole macro nodes of up to 100 entries
    finally:
        await store.redis.aclose()
