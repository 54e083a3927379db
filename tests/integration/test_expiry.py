"""Tasks with a deadline (``expires_in`` / ``expire_at``): one not started by then is never
started; it ends ``expired``, whether it waited ready, scheduled or held."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from arqd.client import Client, NewTask
from arqd.core.lease import Answer
from arqd.core.settings import Settings
from arqd.core.task import TaskStatus
from arqd.observability.metrics import Metrics
from arqd.store.codec import error_json
from arqd.store.store import Store
from arqd.sync import SyncClient
from arqd.worker import Registry
from arqd.worker.telemetry import AttemptMetrics
from conftest import StartWorker, eventually, task_events

pytestmark = pytest.mark.topologies()  # the engine's behaviour on every topology


async def _status(client: Client, task_id: str) -> TaskStatus | None:
    task = await client.get(task_id)
    return None if task is None else task.status


async def test_tasks_that_expire_in_a_paused_queue_never_start(
    client: Client, start_worker: StartWorker
) -> None:
    registry, calls = Registry(), []

    @registry.task()
    async def job(payload: int) -> None:
        calls.append(payload)

    await client.queues.pause("default", reason="expiry test")
    tasks = await client.enqueue_many([NewTask("job", i, expires_in=1) for i in range(1000)])
    await start_worker(registry, concurrency=16)
    await asyncio.sleep(2)  # the pause lasts two seconds: past every task's deadline
    await client.queues.resume("default")

    async def all_expired() -> bool:
        return (await client.stats("default"))[0].expired == 1000

    await eventually(all_expired, timeout=30)
    assert calls == []
    (stats,) = await client.stats("default")
    assert (stats.queued, stats.active, stats.succeeded) == (0, 0, 0)
    page = await client.list_tasks("default", status="expired", limit=1000)
    assert {t.id for t in page.tasks} == {t.id for t in tasks}
    assert {t.status for t in page.tasks} == {TaskStatus.EXPIRED}
    assert all(t.started_at is None and t.finished_at is not None for t in page.tasks)


async def test_a_task_before_its_deadline_runs_and_shows_it(client: Client, store: Store) -> None:
    task = await client.enqueue("t", expires_in=60)
    assert task.created_at is not None
    assert task.expires_at == task.created_at + timedelta(seconds=60)
    stored = await client.get(task.id)
    assert stored is not None
    assert stored.expires_at == task.expires_at
    (lease,) = (await store.leases.dequeue("default", 1, "w")).leases
    assert lease.id == task.id
    at = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    assert (await client.enqueue("t", expire_at=at)).expires_at == at


async def test_a_retry_that_falls_due_after_the_deadline_expires(
    client: Client, store: Store
) -> None:
    task = await client.enqueue("t", expires_in=0.3)
    (lease,) = (await store.leases.dequeue("default", 1, "w")).leases
    failure = error_json("RuntimeError", "flaky", None)
    assert await store.leases.finish("default", [Answer(lease, "retry", failure, 500)])
    assert await _status(client, task.id) is TaskStatus.SCHEDULED

    async def expired() -> bool:
        assert (await store.leases.dequeue("default", 1, "w")).leases == []
        return await _status(client, task.id) is TaskStatus.EXPIRED

    await eventually(expired, timeout=5)
    events = await task_events(store, "default", task.id)
    assert events == ["queued", "active", "retrying", "expired"]


async def test_a_task_held_by_a_paused_type_expires_when_released(
    client: Client, store: Store
) -> None:
    await client.queues.pause("default", task_type="emails")
    task = await client.enqueue("emails", expires_in=0.2)
    fetched = await store.leases.dequeue("default", 1, "w")
    assert (fetched.leases, fetched.held_by_pause) == ([], 1)
    await asyncio.sleep(0.3)  # past its deadline while held
    await client.queues.resume("default", task_type="emails")
    fetched = await store.leases.dequeue("default", 1, "w")
    assert (fetched.leases, fetched.expired) == ([], 1)
    assert await _status(client, task.id) is TaskStatus.EXPIRED
    metrics = Metrics()
    await metrics.refresh(store)
    labels = {"queue": "default", "status": "expired"}
    assert metrics.registry.get_sample_value("arq_queue_tasks", labels) == 1
    AttemptMetrics(metrics).put_off(fetched)
    expired = metrics.registry.get_sample_value("arq_tasks_expired_total", {"queue": "default"})
    assert expired == 1
    assert await client.delete("default", "expired", [task.id]) == 1


@pytest.mark.topologies("standalone")
def test_the_sync_client_sends_a_deadline(settings: Settings) -> None:
    with SyncClient(settings) as sync:
        task = sync.enqueue("t", expires_in=30)
        assert task.expires_at is not None
        stored = sync.get(task.id)
        assert stored is not None
        assert stored.expires_at == task.expires_at
