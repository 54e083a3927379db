"""On a Redis Cluster an idle worker waits on every slot its queues live in at once
(``SpreadWait``): it wakes for work on any master, keeps every lease the other slots'
waits took after it returned, and never runs more tasks than its concurrency."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from arqd.client import Client
from arqd.core.task import NewTask
from arqd.store.codec import Fetched
from arqd.store.store import Store
from arqd.store.wakeup import SpreadWait
from arqd.worker import Registry, Worker
from conftest import eventually, until_blocked
from topologies import ClusterSetup

pytestmark = pytest.mark.topologies("cluster")


def one_queue_per_master(cluster: ClusterSetup, store: Store) -> list[str]:
    found: dict[int, str] = {}
    for n in itertools.count():
        name = f"spread-{n}"
        found.setdefault(cluster.master_port_of_slot(store.keys.slot(name)), name)
        if len(found) == 3:
            return list(found.values())
    raise AssertionError("unreachable")


async def test_leases_taken_after_the_wait_returned_reach_the_worker(
    store: Store, client: Client, cluster_setup: ClusterSetup
) -> None:
    queues = one_queue_per_master(cluster_setup, store)
    wait = store.leases.wake_wait()
    assert isinstance(wait, SpreadWait)
    late: list[Fetched] = []
    for queue in queues:  # each master has the dequeue script (see Leases._spread_wait)
        await store.leases.dequeue(queue, 1, "w1")
    try:
        for _ in range(20):
            # Work on two masters (their wake tokens wait): both pops answer at once, and
            # the wait returns with the first; the other's leases come after, or with it.
            made = await client.enqueue_many([NewTask("echo", queue=q) for q in queues[:2]])
            returned = await store.leases.wait_and_dequeue(
                wait, queues, 2.0, [5, 5, 5], "w1", late=late.extend
            )
            assert any(f.leases for f in returned)
            await wait.settle()
            leased = [lease.id for f in [*returned, *late] for lease in f.leases]
            assert sorted(leased) == sorted(task.id for task in made)
            assert wait.reserved == 0
            late.clear()
    finally:
        await wait.close()


async def test_a_worker_over_every_master_wakes_for_each_and_keeps_its_concurrency(
    store: Store, client: Client, cluster_setup: ClusterSetup
) -> None:
    queues = one_queue_per_master(cluster_setup, store)
    registry = Registry()
    running, most = 0, 0

    @registry.task()
    async def hold(payload: Any) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.05)
        running -= 1

    worker = Worker(registry, store, queues=queues, concurrency=2)
    run = asyncio.create_task(worker.run(install_signals=False))
    try:
        for burst in range(10):  # bursts on several masters at once, the worker idle between
            await until_blocked(store.redis, 3)
            batch = [NewTask("hold", burst, queue=q) for q in queues for _ in range(2)]
            ids = [t.id for t in await client.enqueue_many(batch)]

            async def all_done() -> bool:
                found = [await client.get(task_id) for task_id in ids]  # noqa: B023
                return all(t is not None and t.status == "succeeded" for t in found)

            await eventually(all_done, timeout=20)
    finally:
        worker.stop()
        await run
    assert most == 2
