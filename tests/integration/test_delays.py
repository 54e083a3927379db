"""Delayed tasks start when they are due, not before and not an idle block later."""

from __future__ import annotations

import time

import pytest

from arqd.client import Client
from arqd.core.task import TaskStatus
from arqd.store.store import Store
from arqd.worker import Registry
from arqd.worker.fetching import IDLE_BLOCK
from conftest import StartWorker, until_blocked

pytestmark = pytest.mark.topologies()  # the engine's behaviour on every topology


async def test_a_delayed_task_starts_on_time_not_before(
    client: Client, store: Store, start_worker: StartWorker
) -> None:
    started: list[float] = []
    registry = Registry()

    @registry.task()
    async def stamp(payload: None) -> None:
        started.append(time.time())

    await start_worker(registry)
    await until_blocked(store.redis)  # the worker is idle, blocked on its wake-up key
    due = time.time() + 0.5
    task = await client.enqueue("stamp", delay=0.5)
    assert task.status is TaskStatus.SCHEDULED
    await client.wait(task.id, timeout=10)
    # Started by the worker's own timer, not at the end of an idle block (IDLE_BLOCK); the
    # upper bound leaves room for a loaded machine.
    assert due - 0.002 <= started[0] < due + IDLE_BLOCK / 4
