"""Ready tasks start highest priority first, and in enqueue order (FIFO) within one
priority."""

from __future__ import annotations

import pytest

from arqd.client import Client, NewTask
from arqd.worker import Registry
from conftest import StartWorker

pytestmark = pytest.mark.topologies()  # the engine's behaviour on every topology


async def test_priority_order_then_fifo(client: Client, start_worker: StartWorker) -> None:
    order: list[str] = []
    registry = Registry()

    @registry.task()
    async def record(payload: str) -> None:
        order.append(payload)

    specs = [
        ("low-1", -5),
        ("mid-1", 0),
        ("high-1", 10),
        ("mid-2", 0),
        ("high-2", 10),
        ("low-2", -5),
        ("mid-3", 0),
    ]
    tasks = await client.enqueue_many([NewTask("record", name, priority=p) for name, p in specs])
    await start_worker(registry, concurrency=1)
    for task in tasks:
        await client.wait(task.id, timeout=10)
    assert order == ["high-1", "high-2", "mid-1", "mid-2", "mid-3", "low-1", "low-2"]
