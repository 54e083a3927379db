"""On a Redis Cluster, a failover of the master holding a busy queue during a run (a
manual ``CLUSTER FAILOVER``, and a master killed): the workers and the API follow the
slot to its new master, every task completes, the API answers 503 meanwhile, never 500,
and with replica acks no acknowledged task is lost."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from arqd.api import create_app
from arqd.client import Client
from arqd.core.settings import Settings
from arqd.core.task import NewTask
from conftest import WorkerProcess, eventually
from e2e.live import AUTH, LiveServer, settings_for
from topologies import ClusterSetup

pytestmark = pytest.mark.topologies("cluster")

TASKS = 5000


async def succeeded(client: Client) -> int:
    (stats,) = await client.stats("default")
    return stats.succeeded


async def test_workers_follow_a_failover_and_every_task_completes(
    client: Client,
    settings: Settings,
    cluster_setup: ClusterSetup,
    workers: list[WorkerProcess],
) -> None:
    for _ in range(2):
        workers.append(WorkerProcess(settings, "crash_tasks"))
    for _ in range(TASKS // 500):
        await client.enqueue_many([NewTask("nap", 0.005) for _ in range(500)])

    async def under_way() -> bool:
        return await succeeded(client) >= TASKS // 5

    await eventually(under_way, timeout=60)
    slot = client.slot("default")
    old = cluster_setup.master_port_of_slot(slot)
    before = await succeeded(client)
    started = time.monotonic()
    new = await asyncio.to_thread(cluster_setup.failover, slot)
    assert new != old

    async def resumed() -> bool:  # tasks finish on the new master
        return await succeeded(client) > before

    await eventually(resumed, timeout=30)
    resumed_after = time.monotonic() - started
    assert resumed_after < 10, f"processing resumed {resumed_after:.1f} s after the failover"

    async def all_done() -> bool:
        return await succeeded(client) == TASKS

    await eventually(all_done, timeout=90)
    assert all(worker.process.poll() is None for worker in workers)
    assert await client.placement("default") == (slot, f"127.0.0.1:{new}")


async def test_a_killed_master_loses_no_acknowledged_task_and_the_api_answers_503(
    settings: Settings, cluster_setup: ClusterSetup, workers: list[WorkerProcess]
) -> None:
    acking = settings.model_copy(update={"replica_acks": 1})
    # The API without acks: once the replica is master, it has no replica of its own
    # until the killed server comes back (with acks, 503 replicas-behind until then).
    server = LiveServer(create_app(settings_for(cluster_setup.url)))
    server.start()
    statuses: list[int] = []
    async with Client.from_settings(acking) as client:
        enqueued: list[str] = []
        for _ in range(4):  # every one acknowledged by the replica before the crash
            batch = await client.enqueue_many([NewTask("nap", 0.002) for _ in range(500)])
            enqueued += [task.id for task in batch]
        workers.extend(WorkerProcess(acking, "crash_tasks") for _ in range(2))
        killed = cluster_setup.kill_master(client.slot("default"))
        try:
            async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=30) as http:
                started = time.monotonic()
                while True:  # the API until the new master answers: 503s, never a 500
                    response = await http.post("/tasks", json={"type": "nap", "payload": 0})
                    statuses.append(response.status_code)
                    if response.status_code == 201:
                        break
                    assert response.headers["retry-after"] == "1"
                    assert time.monotonic() - started < 30, "no new master"
                took_over = time.monotonic() - started
                assert took_over < 10, f"the API answered again {took_over:.1f} s after"

            async def all_done() -> bool:
                (stats,) = await client.stats("default")
                return stats.succeeded >= len(enqueued)

            await eventually(all_done, timeout=90)
            found = [await client.get(task_id, "default") for task_id in enqueued]
            assert all(task is not None and task.status == "succeeded" for task in found)
        finally:
            server.stop()
            await asyncio.to_thread(cluster_setup.revive, killed)
    assert set(statuses) <= {201, 503}, statuses
