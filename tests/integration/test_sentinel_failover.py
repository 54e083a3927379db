"""Behind Sentinel, a failover during a run: the workers follow the new master, and every
task completes."""

from __future__ import annotations

import asyncio
import time

import pytest

from arqd.client import Client
from arqd.core.settings import Settings
from arqd.core.task import NewTask
from conftest import WorkerProcess, eventually
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
