"""A worker that loses Redis backs off and comes back; it does not crash or hold leases."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from arqd.client import Client
from arqd.core.settings import Settings
from arqd.core.task import TaskStatus
from arqd.store.connection import connect
from arqd.store.store import Store
from conftest import RedisServer, eventually, worker_environment


async def test_a_worker_rides_out_a_redis_outage(tmp_path: Path, settings: Settings) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    own = settings.model_copy(update={"redis_url": server.url})
    store = Store(connect(server.url), own)
    client = Client(store)
    output = tmp_path / "worker.log"
    process = _worker_logging_to(output, own)
    try:
        task = await client.enqueue("nap", 60)

        async def running() -> bool:
            found = await client.get(task.id)
            return found is not None and found.status is TaskStatus.ACTIVE

        await eventually(running, timeout=15)
        server.stop()
        await asyncio.sleep(own.lease_timeout / 1000 * 2.5)  # several failed heartbeats
        assert process.poll() is None, "the worker must not crash"

        server.start()  # same port, empty: the outage lost Redis's data
        fresh = await client.enqueue("nap", 0.01)
        done = await client.wait(fresh.id, timeout=30)
        assert done.status is TaskStatus.SUCCEEDED

        async def holds_nothing() -> bool:  # once it has registered again after the restart
            infos = await client.workers()
            return len(infos) == 1 and not infos[0].details["running"]

        await eventually(holds_nothing, timeout=10)
        assert process.poll() is None
        # The outage is told once per loop that talks to Redis, and so is its end.
        log = output.read_text()
        for doing in ("fetching", "heartbeat"):
            assert log.count(f"{doing} failed") == 1, log
            assert log.count(f"{doing} works again") == 1, log
    finally:
        process.kill()
        process.wait()
        await store.redis.aclose()
        server.stop()


async def test_a_worker_started_before_its_redis_waits_says_so_once_and_starts(
    tmp_path: Path, settings: Settings
) -> None:
    server = RedisServer(tmp_path / "redis")  # its port is chosen; it starts later
    own = settings.model_copy(update={"redis_url": server.url})
    output = tmp_path / "worker.log"
    process = _worker_logging_to(output, own)
    store = Store(connect(server.url), own)
    try:
        await asyncio.sleep(4)  # several tries while Redis is down
        assert process.poll() is None, "the worker must not crash"
        server.start()
        client = Client(store)
        task = await client.enqueue("nap", 0.01)
        done = await client.wait(task.id, timeout=30)
        assert done.status is TaskStatus.SUCCEEDED
        log = output.read_text()
        assert log.count("cannot reach Redis") == 1, log
        assert "Traceback" not in log, log
    finally:
        process.kill()
        process.wait()
        await store.redis.aclose()
        server.stop()


def _worker_logging_to(output: Path, settings: Settings) -> subprocess.Popen[bytes]:
    with output.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "arqd", "worker", "crash_tasks"],
            env=worker_environment(settings),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
