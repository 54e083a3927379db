"""Behind Sentinel, a failover during a run: the workers and the API follow the new master,
every task completes, and the API answers 503 meanwhile, never 500."""

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
from topologies import SentinelSetup

pytestmark = pytest.mark.topologies("sentinel")

TASKS = 5000


async def succeeded(client: Client) -> int:
    (stats,) = await client.stats("default")
    return stats.succeeded


async def test_workers_follow_a_failover_and_every_task_completes(
    client: Client,
    settings: Settings,
    sentinel_setup: SentinelSetup,
    workers: list[WorkerProcess],
) -> None:
    for _ in range(2):
        workers.append(WorkerProcess(settings, "crash_tasks"))
    for _ in range(TASKS // 500):
        await client.enqueue_many([NewTask("nap", 0.005) for _ in range(500)])

    async def under_way() -> bool:
        return await succeeded(client) >= TASKS // 5

    await eventually(under_way, timeout=60)
    before = await succeeded(client)
    started = time.monotonic()
    await asyncio.to_thread(sentinel_setup.failover)

    async def resumed() -> bool:  # tasks finish on the new master
        return await succeeded(client) > before

    await eventually(resumed, timeout=30)
    resumed_after = time.monotonic() - started
    assert resumed_after < 10, f"processing resumed {resumed_after:.1f} s after the failover"

    async def all_done() -> bool:
        return await succeeded(client) == TASKS

    await eventually(all_done, timeout=90)
    assert all(worker.process.poll() is None for worker in workers)
    await asyncio.to_thread(sentinel_setup.settle)


async def test_the_api_answers_503_with_retry_after_during_a_failover_never_500(
    sentinel_setup: SentinelSetup,
) -> None:
    settings = settings_for(sentinel_setup.url)
    server = LiveServer(create_app(settings, with_worker=True))
    server.start()
    statuses: list[int] = []
    try:
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=30) as http:

            async def post() -> httpx.Response:
                response = await http.post("/tasks", json={"type": "echo", "payload": 1})
                statuses.append(response.status_code)
                if response.status_code == 503:
                    assert int(response.headers["retry-after"]) >= 1
                return response

            assert (await post()).status_code == 201
            failing_over = asyncio.create_task(asyncio.to_thread(sentinel_setup.failover))
            while not failing_over.done():  # enqueue all the way through the failover
                await post()
            await failing_over
            started = time.monotonic()
            while (last := await post()).status_code != 201:
                assert time.monotonic() - started < 10, "the API did not follow the new master"
            done = await http.get(f"/tasks/{last.json()['id']}", params={"wait": 20})
            assert done.json()["status"] == "succeeded"  # the in-process worker followed too
    finally:
        server.stop()
        await asyncio.to_thread(sentinel_setup.settle)
    assert set(statuses) <= {201, 503}, statuses


async def test_a_killed_master_loses_no_acknowledged_task_and_the_api_answers_503(
    settings: Settings, sentinel_setup: SentinelSetup, workers: list[WorkerProcess]
) -> None:
    acking = settings.model_copy(update={"replica_acks": 1})
    # The API without acks: once the replica is master, there is no replica left to ask
    # until the killed server comes back (with acks, 503 replicas-behind until then).
    server = LiveServer(create_app(settings_for(sentinel_setup.url)))
    server.start()
    statuses: list[int] = []
    async with Client.from_settings(acking) as client:
        enqueued: list[str] = []
        for _ in range(4):  # every one acknowledged by the replica before the crash
            batch = await client.enqueue_many([NewTask("nap", 0.002) for _ in range(500)])
            enqueued += [task.id for task in batch]
        workers.extend(WorkerProcess(acking, "crash_tasks") for _ in range(2))
        killed = sentinel_setup.kill_master()
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

            async def all_done() -> bool:
                (stats,) = await client.stats("default")
                return stats.succeeded >= len(enqueued)

            await eventually(all_done, timeout=90)
            found = [await client.get(task_id) for task_id in enqueued]
            assert all(task is not None and task.status == "succeeded" for task in found)
        finally:
            server.stop()
            await asyncio.to_thread(sentinel_setup.revive, killed)
    assert set(statuses) <= {201, 503}, statuses
