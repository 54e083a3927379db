"""Plain (non-async) handlers run in the worker's thread pool, so blocking in one does
not stall the others."""

from __future__ import annotations

import time

import pytest

from arqd.client import Client, NewTask
from arqd.worker import Registry
from conftest import StartWorker

pytestmark = pytest.mark.topologies()  # the engine's behaviour on every topology


async def test_sync_handlers_run_in_threads(client: Client, start_worker: StartWorker) -> None:
    registry = Registry()

    @registry.task()
    def shout(payload: str) -> str:
        time.sleep(0.05)  # blocking is fine: it runs in the thread pool
        return payload.upper()

    await start_worker(registry)
    tasks = await client.enqueue_many([NewTask("shout", f"t{i}") for i in range(5)])
    results = [await client.wait(t.id, timeout=10) for t in tasks]
    assert [r.result for r in results] == [f"T{i}" for i in range(5)]
