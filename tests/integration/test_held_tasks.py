"""Tasks held by a limit, as operators see them: counted by reason (stats, /queues, inspect,
metrics), aged in the consumer lag, and started as soon as their obstacle is gone."""

from __future__ import annotations

import asyncio
import time

import pytest
from rich.console import Console

from arqd.api.schemas import queue_json
from arqd.cli_inspect import queues_table
from arqd.client import Client, NewTask
from arqd.core.lease import Answer
from arqd.core.settings import Settings
from arqd.core.task import TaskStatus
from arqd.observability.metrics import Metrics
from arqd.store.codec import error_json
from arqd.store.connection import connect
from arqd.store.leases import Limit
from arqd.store.store import Store
from arqd.worker import Registry
from arqd.worker.telemetry import AttemptMetrics
from conftest import StartWorker, eventually, until_blocked

pytestmark = pytest.mark.topologies()  # the engine's behaviour on every topology

CAPPED = Limit("capped", concurrency=1)
RATED = Limit("rated", interval_ms=60_000)


async def open_breaker(store: Store, task_type: str, open_ms: int = 60_000) -> None:
    """One failure of ``task_type`` with a threshold of one: its breaker opens."""
    await store.tasks.enqueue([NewTask(task_type)])
    (lease,) = (await store.leases.dequeue("default", 1, "w")).leases
    failure = error_json("RuntimeError", "down", None)
    answer = Answer(lease, "failed", failure, 0, "fail", 1, open_ms)
    assert await store.leases.finish("default", [answer]) == [True]


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


async def test_held_tasks_are_counted_by_reason_and_aged(client: Client, store: Store) -> None:
    await open_breaker(store, "broken")
    names = ["capped"] * 3 + ["rated"] * 2 + ["broken"] * 2
    await store.tasks.enqueue([NewTask(name) for name in names])
    fetched = await store.leases.dequeue("default", 10, "w", [CAPPED, RATED])
    assert sorted(lease.type for lease in fetched.leases) == ["capped", "rated"]
    held = (fetched.throttled, fetched.held_by_concurrency, fetched.held_by_breaker)
    assert held == (1, 2, 2)

    metrics = Metrics()
    AttemptMetrics(metrics).put_off(fetched)
    assert sample(metrics, "arq_rate_limited_requests_total", scope="task") == 1
    assert sample(metrics, "arq_tasks_held_total", queue="default", reason="concurrency") == 2
    assert sample(metrics, "arq_tasks_held_total", queue="default", reason="breaker") == 2

    started = time.monotonic()
    await asyncio.sleep(0.2)  # the held tasks age: nothing is ready, yet they wait
    (stats,) = await client.stats("default")
    assert stats.queued == 5
    assert stats.held == {"rate_limit": 1, "concurrency": 2, "breaker": 2, "paused": 0}
    assert stats.oldest_age is not None
    assert 0.2 <= stats.oldest_age <= time.monotonic() - started + 1
    assert queue_json(stats)["held"] == stats.held

    await metrics.refresh(store)
    assert sample(metrics, "arq_queue_length", queue="default") == 5
    lag = sample(metrics, "arq_consumer_lag_seconds", queue="default")
    assert lag is not None
    assert lag >= 0.2

    console = Console(width=200, record=True)
    console.print(queues_table([stats], [await client.placement("default")]))
    assert "1 / 2 / 2" in console.export_text()


async def test_finished_tasks_leave_the_counts_when_they_expire(settings: Settings) -> None:
    short = settings.model_copy(update={"result_ttl": 1000})
    store = Store(connect(short.redis_url or ""), short)
    client = Client(store)
    try:
        kept = await client.enqueue("t", result_ttl=60)
        gone = await client.enqueue_many([NewTask("t") for _ in range(3)])
        leases = (await store.leases.dequeue("default", 4, "w")).leases
        answers = [Answer(lease, "succeeded", b"null") for lease in leases]
        assert await store.leases.finish("default", answers) == [True] * 4
        assert (await client.stats("default"))[0].succeeded == 4

        async def expired() -> bool:
            return all([await client.get(t.id) is None for t in gone])

        async def counted_once() -> bool:  # the one whose own result TTL has not run out
            return (await client.stats("default"))[0].succeeded == 1

        await eventually(expired, timeout=5)
        await eventually(counted_once, timeout=1)
        page = await client.list_tasks(status="succeeded")
        assert [t.id for t in page.tasks] == [kept.id]
    finally:
        await store.close()


async def test_a_task_held_by_a_concurrency_limit_starts_when_a_slot_frees(
    client: Client, start_worker: StartWorker
) -> None:
    registry = Registry()

    @registry.task(concurrency=2)
    async def capped(payload: None) -> None:
        await asyncio.sleep(0.3)

    for _ in range(2):
        await start_worker(registry, concurrency=4)
    started = time.monotonic()
    tasks = await client.enqueue_many([NewTask("capped") for _ in range(20)])
    done = [await client.wait(t.id, timeout=30) for t in tasks]
    took = time.monotonic() - started
    assert {t.status for t in done} == {TaskStatus.SUCCEEDED}
    assert took < 4.5, f"20 tasks of 0.3 s two at a time took {took:.1f} s (3.0 s at best)"


async def test_a_throttled_task_starts_at_its_slot_on_an_idle_worker(
    client: Client, store: Store, start_worker: StartWorker
) -> None:
    registry = Registry()

    @registry.task(rate_limit="2/s")
    async def rated(payload: None) -> None:
        return None

    # The test stands for a busy worker: first in line for the wake-up, it leases the
    # first task and throttles the second, which the idle worker then must start on time.
    woken = asyncio.ensure_future(store.redis.blpop([store.keys.wake("default")], timeout=10))
    await until_blocked(store.redis)
    await start_worker(registry, concurrency=1)
    await until_blocked(store.redis, 2)
    first, second = await client.enqueue_many([NewTask("rated"), NewTask("rated")])
    assert await woken is not None
    fetched = await store.leases.dequeue("default", 2, "busy", [Limit("rated", 500.0)])
    ((lease,), throttled) = (fetched.leases, fetched.throttled)
    assert (lease.id, throttled) == (first.id, 1)
    slot = time.time() + 0.5
    assert await store.leases.finish("default", [Answer(lease, "succeeded", b"null")])
    done = await client.wait(second.id, timeout=10)
    assert done.started_at is not None
    late = done.started_at.timestamp() - slot
    assert late < 0.3, f"the throttled task started {late:.2f} s after its slot"
