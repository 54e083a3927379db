"""The task an enqueue answers with is the task Redis holds: the same status, the same
creation time (Redis's clock), the same effective values, from every way to enqueue."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from arqd.client import Client
from arqd.core.settings import Settings
from arqd.core.task import NewTask, Task, TaskStatus
from arqd.sync import SyncClient

pytestmark = pytest.mark.topologies()  # the engine's behaviour on every topology


def new_tasks() -> list[NewTask]:
    now = datetime.now(UTC)
    return [
        NewTask("echo"),
        NewTask("echo", eta=now - timedelta(seconds=5)),  # already due: queued
        NewTask("echo", eta=now + timedelta(minutes=5)),
        NewTask("echo", delay=60),
        NewTask("echo", delay=0.0001),  # rounds to no delay at all: queued
        NewTask("echo", max_retries=1, timeout=2.5, priority=3),
    ]


STATUSES = [TaskStatus.QUEUED, TaskStatus.QUEUED, TaskStatus.SCHEDULED, TaskStatus.SCHEDULED]
STATUSES += [TaskStatus.QUEUED, TaskStatus.QUEUED]


def comparable(task: Task) -> Task:
    """The fields an enqueue's answer shares with the stored task (the due time is only
    in the stored one)."""
    return replace(task, scheduled_at=None)


async def assert_as_stored(client: Client, answered: list[Task]) -> None:
    assert [t.status for t in answered] == STATUSES
    for task in answered:
        stored = await client.get(task.id)
        assert stored is not None
        assert comparable(task) == comparable(stored)
        assert task.max_retries is not None
        assert task.timeout is not None


@pytest.mark.parametrize("how", ["one", "many", "concurrent"])
async def test_an_async_enqueue_answers_with_the_stored_task(client: Client, how: str) -> None:
    tasks = new_tasks()
    if how == "many":
        answered = await client.enqueue_many(tasks)
    elif how == "one":
        answered = [await client.enqueue_task(task) for task in tasks]
    else:  # grouped into shared script calls
        answered = list(await asyncio.gather(*(client.enqueue_task(t) for t in tasks)))
    await assert_as_stored(client, answered)


async def test_a_blocking_enqueue_answers_with_the_stored_task(
    client: Client, settings: Settings
) -> None:
    with SyncClient(settings) as sync:
        answered = sync.enqueue_many(new_tasks())
    await assert_as_stored(client, answered)
