"""An idle worker's wait: the blocking pop with its dequeue sent behind it (store.wakeup),
interrupted, cancelled, and after Redis lost its scripts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from arqd.client import Client
from arqd.core.task import NewTask, TaskStatus
from arqd.store.codec import Fetched
from arqd.store.store import Store
from arqd.store.wakeup import WakeWait
from arqd.worker import Registry, Worker
from arqd.worker.fetching import IDLE_BLOCK
from conftest import StartWorker, blocked_clients, eventually, until_blocked

QUEUE = "default"
BLOCK = 2.0  # seconds the pop blocks (store.BLOCK_CAP)


@pytest.fixture
async def wait(store: Store) -> AsyncIterator[WakeWait]:
    """A connection for idle waits, as a worker keeps one."""
    wait = store.leases.wake_wait()
    assert isinstance(wait, WakeWait)  # one server
    yield wait
    await wait.close()


def _ids(fetched: list[Fetched]) -> list[str]:
    return [lease.id for one in fetched for lease in one.leases]


async def test_a_task_enqueued_during_the_wait_is_leased_by_the_same_call(
    client: Client, store: Store, wait: WakeWait
) -> None:
    waiting = asyncio.ensure_future(store.leases.wait_and_dequeue(wait, [QUEUE], BLOCK, [5], "w1"))
    await until_blocked(store.redis)
    task = await client.enqueue("echo", 1)
    assert _ids(await waiting) == [task.id]
    leased = await client.get(task.id)
    assert leased is not None
    assert leased.status is TaskStatus.ACTIVE


async def test_an_interrupt_ends_the_wait_and_its_dequeue_still_leases(
    client: Client, store: Store, wait: WakeWait
) -> None:
    # A due time wakes nobody in Redis: the worker's own timer interrupts the wait, and
    # the dequeue behind the pop promotes the due task and leases it.
    task = await client.enqueue("echo", 1, delay=0.05)
    await store.redis.delete(store.keys.wake(QUEUE))  # its wake-up token, for a blocked pop
    waiting = asyncio.ensure_future(store.leases.wait_and_dequeue(wait, [QUEUE], BLOCK, [5], "w1"))
    await until_blocked(store.redis)
    await asyncio.sleep(0.1)  # the task falls due while the pop blocks
    started = time.monotonic()
    await wait.interrupt()
    assert _ids(await waiting) == [task.id]
    assert time.monotonic() - started < BLOCK  # ended by the interrupt, not the timeout


async def test_an_interrupt_before_the_pop_is_sent_skips_the_blocking(
    client: Client, store: Store, wait: WakeWait
) -> None:
    task = await client.enqueue("echo", 1, delay=0.05)
    await asyncio.sleep(0.1)  # the task falls due before the wait begins
    await store.redis.delete(store.keys.wake(QUEUE))  # no token: the pop would block
    started = time.monotonic()
    waiting = asyncio.ensure_future(store.leases.wait_and_dequeue(wait, [QUEUE], BLOCK, [5], "w1"))
    await asyncio.sleep(0)  # the wait has begun: it is connecting, nothing sent yet
    await wait.interrupt()
    assert _ids(await waiting) == [task.id]
    assert time.monotonic() - started < BLOCK


async def test_a_cancelled_wait_drops_its_connection_and_the_next_wait_works(
    client: Client, store: Store, wait: WakeWait
) -> None:
    waiting = asyncio.ensure_future(store.leases.wait_and_dequeue(wait, [QUEUE], BLOCK, [5], "w1"))
    await until_blocked(store.redis)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert waiting.cancelled()

    async def unblocked() -> bool:
        return await blocked_clients(store.redis) == 0

    await eventually(unblocked)  # Redis dropped the pop, and the dequeue behind it
    again = asyncio.ensure_future(store.leases.wait_and_dequeue(wait, [QUEUE], BLOCK, [5], "w1"))
    await until_blocked(store.redis)
    task = await client.enqueue("echo", 2)
    assert _ids(await again) == [task.id]


async def test_the_wait_loads_the_dequeue_script_again_after_a_flush(
    client: Client, store: Store, wait: WakeWait
) -> None:
    task = await client.enqueue("echo", 1)  # its wake token is there: no blocking
    await store.redis.script_flush()
    fetched = await store.leases.wait_and_dequeue(wait, [QUEUE], BLOCK, [5], "w1")
    assert _ids(fetched) == [task.id]


def _echo_registry() -> Registry:
    registry = Registry()

    @registry.task()
    async def echo(payload: int) -> int:
        return payload

    return registry


async def test_a_worker_on_two_queues_is_woken_by_either(
    client: Client, store: Store, start_worker: StartWorker
) -> None:
    await start_worker(_echo_registry(), queues=["a", "b"])
    for queue in ("a", "b", "a"):
        await until_blocked(store.redis)
        task = await client.enqueue("echo", 1, queue=queue)
        assert (await client.wait(task.id, timeout=10)).status is TaskStatus.SUCCEEDED


async def test_stopping_an_idle_worker_ends_its_wait(store: Store) -> None:
    worker = Worker(_echo_registry(), store)
    running = asyncio.create_task(worker.run(install_signals=False))
    await until_blocked(store.redis)
    started = time.monotonic()
    worker.stop()
    await asyncio.wait_for(running, 10)
    assert time.monotonic() - started < BLOCK  # ended by the interrupt, not the timeout


async def test_work_one_worker_leaves_behind_wakes_another(
    client: Client, store: Store, start_worker: StartWorker
) -> None:
    # Each worker takes one task at a time; both tasks can only finish while both run.
    both = asyncio.Barrier(2)
    registry = Registry()

    @registry.task()
    async def meet(payload: int) -> int:
        await asyncio.wait_for(both.wait(), 10)
        return payload

    for _ in range(2):
        await start_worker(registry, concurrency=1)

    await until_blocked(store.redis, 2)
    tasks = await client.enqueue_many([NewTask("meet", 1), NewTask("meet", 2)])
    for task in tasks:
        assert (await client.wait(task.id, timeout=15)).status is TaskStatus.SUCCEEDED


async def test_each_task_enqueued_while_others_run_wakes_the_idle_worker(
    client: Client, store: Store, start_worker: StartWorker
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

        await until_blocked(store.redis)  # the worker is blocked again, on its wake-up key
        sent[name] = time.monotonic()
        await client.enqueue("hold", name)
        await eventually(running)
    release.set()
    assert all(started[n] - sent[n] < IDLE_BLOCK / 2 for n in sent), (started, sent)
