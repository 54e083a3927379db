"""SyncClient against a real Redis: blocking enqueues from any thread, without an event loop
in the caller, with the same validation and idempotency as the async client."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis

from arqd.core.errors import InvalidTask, PayloadTooLarge, TaskNotFound
from arqd.core.settings import Settings
from arqd.core.task import NewTask, TaskStatus
from arqd.store.connection import connect_sync
from arqd.sync import SyncClient

pytestmark = pytest.mark.topologies()  # the engine's behaviour on every topology


@pytest.fixture
def sync_client(settings: Settings) -> Iterator[SyncClient]:
    with SyncClient(settings) as client:
        yield client


@pytest.fixture
def plain(settings: Settings) -> Iterator[redis.Redis | redis.RedisCluster]:
    client = connect_sync(settings.redis_url or "")
    yield client
    client.close()


def test_an_enqueued_task_is_queued_and_stored(sync_client: SyncClient) -> None:
    task = sync_client.enqueue("send_email", {"to": "a@example.com"}, priority=5)

    assert (task.status, task.type, task.queue, task.priority) == (
        TaskStatus.QUEUED, "send_email", "default", 5
    )  # fmt: skip
    stored = sync_client.get(task.id)
    assert stored is not None
    assert (stored.status, stored.payload) == (TaskStatus.QUEUED, {"to": "a@example.com"})
    assert [s.queued for s in sync_client.stats("default")] == [1]


def test_a_delayed_task_is_scheduled(sync_client: SyncClient) -> None:
    task = sync_client.enqueue("later", None, delay=60)
    stored = sync_client.get(task.id)
    assert task.status is stored.status is TaskStatus.SCHEDULED  # type: ignore[union-attr]


def test_a_batch_over_several_queues_keeps_its_order(sync_client: SyncClient) -> None:
    batch = [NewTask("job", i, queue="mail" if i % 2 else "reports") for i in range(6)]

    tasks = sync_client.enqueue_many(batch)

    assert [t.id for t in tasks] == [n.id for n in batch]
    assert [t.queue for t in tasks] == ["reports", "mail"] * 3
    assert {s.queue: s.queued for s in sync_client.stats()} == {"mail": 3, "reports": 3}


def test_a_repeated_idempotency_key_returns_the_first_task(sync_client: SyncClient) -> None:
    first = sync_client.enqueue("charge", {"amount": 1}, idempotency_key="order-7")
    again = sync_client.enqueue("charge", {"amount": 2}, idempotency_key="order-7")

    assert again.id == first.id
    assert again.payload == {"amount": 1}
    assert [s.queued for s in sync_client.stats("default")] == [1]


@pytest.mark.parametrize(
    ("task", "error", "message"),
    [
        (NewTask("job", queue="no spaces"), InvalidTask, "queue"),
        (NewTask("bad name!"), InvalidTask, "name"),
        (NewTask("job", priority=10**9), InvalidTask, "priority"),
        (NewTask("job", "x" * 2_000_000), PayloadTooLarge, "payload"),
    ],
)
def test_a_bad_task_is_refused_and_nothing_of_its_batch_is_written(
    sync_client: SyncClient, task: NewTask, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        sync_client.enqueue_many([NewTask("fine"), task])
    assert sync_client.stats() == []


def test_the_same_task_twice_in_a_batch_is_refused(sync_client: SyncClient) -> None:
    task = NewTask("job")
    with pytest.raises(InvalidTask, match="twice"):
        sync_client.enqueue_many([task, task])


def test_threads_share_one_client(sync_client: SyncClient) -> None:
    ids: list[str] = []
    lock = threading.Lock()

    def produce() -> None:
        for i in range(50):
            task = sync_client.enqueue("job", i)
            with lock:
                ids.append(task.id)

    threads = [threading.Thread(target=produce) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(ids)) == 400
    assert [s.queued for s in sync_client.stats("default")] == [400]


def test_a_killed_connection_is_replaced_and_the_enqueue_goes_through(
    sync_client: SyncClient, plain: redis.Redis
) -> None:
    sync_client.enqueue("job", 1)
    assert int(plain.client_kill_filter(_type="normal", skipme=True)) >= 1

    task = sync_client.enqueue("job", 2)

    assert sync_client.get(task.id) is not None
    assert [s.queued for s in sync_client.stats("default")] == [2]


def test_scripts_flushed_from_redis_are_loaded_again(
    sync_client: SyncClient, plain: redis.Redis
) -> None:
    sync_client.enqueue("job", 1)
    plain.script_flush()

    task = sync_client.enqueue("job", 2)

    assert sync_client.get(task.id) is not None


def test_logs_of_a_task_that_has_not_run_are_empty(sync_client: SyncClient) -> None:
    task = sync_client.enqueue("quiet", None)
    assert sync_client.logs(task.id) == []
    with pytest.raises(TaskNotFound):
        sync_client.logs("no-such-task")


def test_operators_calls_block_too(sync_client: SyncClient) -> None:
    sync_client.ping()
    later = sync_client.enqueue("report", None, delay=3600)
    assert sync_client.run_now(later.id).status is TaskStatus.QUEUED
    cancelled = sync_client.cancel(sync_client.enqueue("report", None).id)
    assert sync_client.delete("default", "cancelled", [cancelled.id]) == 1
    assert sync_client.get(cancelled.id) is None
    assert sync_client.throughput("default", minutes=5).queue == "default"
    assert sync_client.breakers() == []
    assert sync_client.breaker("payments") is None
