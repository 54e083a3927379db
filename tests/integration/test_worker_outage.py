"""A worker that loses Redis backs off and comes back; it does not crash or hold leases."""

from __future__ import annotations

import asyncio
from pathlib import Path

from arqd.client import Client
from arqd.core.settings import Settings
from arqd.core.task import TaskStatus
from arqd.store.connection import connect
from arqd.store.store import Store
from conftest import RedisServer, WorkerProcess, eventually


async def test_a_worker_rides_out_a_redis_outage(
    tmp_path: Path, settings: Settings, workers: list[WorkerProcess]
) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    own = settings.model_copy(update={"redis_url": server.url})
    store = Store(connect(server.url), own)
    client = Client(store)
    try:
        workers.append(WorkerProcess(own, "crash_tasks"))
        task = await client.enqueue("nap", 60)

        async def running() -> bool:
            found = await client.get(task.id)
            return found is not None and found.status is TaskStatus.ACTIVE

        await eventually(running, timeout=15)
        server.stop()
        await asyncio.sleep(own.lease_timeout / 1000 * 2.5)  # several failed heartbeats
        assert workers[0].process.poll() is None, "the worker must not crash"

        server.start()  # same port, empty: the outage lost Redis's data
        fresh = await client.enqueue("nap", 0.01)
        done = await client.wait(fresh.id, timeout=30)
        assert done.status is TaskStatus.SUCCEEDED

        async def holds_nothing() -> bool:  # once it has registered again after the restart
            infos = await client.workers()
            return len(infos) == 1 and not infos[0].details["running"]

        await eventually(holds_nothing, timeout=10)
        assert workers[0].process.poll() is None
    finally:
        await store.redis.aclose()
        server.stop()
