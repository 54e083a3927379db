"""What the failover tests of every topology share: a 5,000-task run through a failover,
and a master killed under an API and workers with replica acks on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx

from arqd.api import create_app
from arqd.client import Client
from arqd.core.settings import Settings
from arqd.core.task import NewTask
from conftest import WorkerProcess, eventually
from e2e.live import AUTH, LiveServer, settings_for

TASKS = 5000


async def succeeded(client: Client) -> int:
    (stats,) = await client.stats("default")
    return stats.succeeded


async def run_through_a_failover(
    client: Client,
    settings: Settings,
    workers: list[WorkerProcess],
    fail_over: Callable[[], object],
) -> None:
    """Two worker processes run 5,000 tasks; a fifth of the way, ``fail_over`` (in a
    thread): processing resumes within 10 s, and every task completes."""
    for _ in range(2):
        workers.append(WorkerProcess(settings, "crash_tasks"))
    for _ in range(TASKS // 500):
        await client.enqueue_many([NewTask("nap", 0.005) for _ in range(500)])

    async def under_way() -> bool:
        return await succeeded(client) >= TASKS // 5

    await eventually(under_way, timeout=60)
    before = await succeeded(client)
    started = time.monotonic()
    await asyncio.to_thread(fail_over)

    async def resumed() -> bool:  # tasks finish on the new master
        return await succeeded(client) > before

    await eventually(resumed, timeout=30)
    resumed_after = time.monotonic() - started
    assert resumed_after < 10, f"processing resumed {resumed_after:.1f} s after the failover"

    async def all_done() -> bool:
        return await succeeded(client) == TASKS

    await eventually(all_done, timeout=90)
    assert all(worker.process.poll() is None for worker in workers)


async def kill_a_master_under_load(
    settings: Settings,
    url: str,
    workers: list[WorkerProcess],
    kill: Callable[[], int],
    revive: Callable[[int], None],
) -> list[int]:
    """2,000 tasks enqueued with replica acks, then the master ``kill`` names is killed
    under two workers and an API: every acknowledged task completes; the API's answers
    until the new master takes them (503s, then a 201; never a 500); ``revive`` after."""
    acking = settings.model_copy(update={"replica_acks": 1})
    # The API without acks: once the replica is master, it has no replica of its own
    # until the killed server comes back (with acks, 503 replicas-behind until then).
    server = LiveServer(create_app(settings_for(url)))
    server.start()
    statuses: list[int] = []
    async with Client.from_settings(acking) as client:
        enqueued: list[str] = []
        for _ in range(4):  # every one acknowledged by the replica before the crash
            batch = await client.enqueue_many([NewTask("nap", 0.002) for _ in range(500)])
            enqueued += [task.id for task in batch]
        workers.extend(WorkerProcess(acking, "crash_tasks") for _ in range(2))
        killed = kill()
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
                return await succeeded(client) >= len(enqueued)

            await eventually(all_done, timeout=90)
            found = [await client.get(task_id, "default") for task_id in enqueued]
            assert all(task is not None and task.status == "succeeded" for task in found)
        finally:
            server.stop()
            await asyncio.to_thread(revive, killed)
    assert set(statuses) <= {201, 503}, statuses
    return statuses
