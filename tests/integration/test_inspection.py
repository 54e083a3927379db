"""Reading the system: tasks listed by queue, status and type a page at a time (cursors
that are crafted or past the end included), queue stats, and the live workers."""

from __future__ import annotations

import asyncio
import base64

import orjson
import pytest

from arqd.client import Client, NewTask
from arqd.core.errors import InvalidTask
from arqd.worker import Registry
from conftest import StartWorker, eventually

pytestmark = pytest.mark.topologies()  # the engine's behaviour on every topology


async def test_list_filters_and_pages(client: Client) -> None:
    created = await client.enqueue_many(
        [NewTask("a" if i % 2 else "b", i) for i in range(7)] + [NewTask("a", 99, queue="other")]
    )
    seen: list[str] = []
    cursor = None
    while True:
        page = await client.list_tasks(queue="default", task_type="a", cursor=cursor, limit=2)
        seen += [t.id for t in page.tasks]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [t.id for t in created[:7] if t.type == "a"]
    everything = await client.list_tasks(limit=100)
    assert len(everything.tasks) == 8
    with pytest.raises(InvalidTask, match="unknown status"):
        await client.list_tasks(status="sleeping")
    with pytest.raises(InvalidTask, match="invalid cursor"):
        await client.list_tasks(cursor="!!")


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


@pytest.mark.parametrize(
    "crafted",
    [[-5, 0, 0], [0, -1, 0], [0, 0, -1], [0, 0, 2**62], [0, 0, 1.5], [True, 0, 0], [1, 2], {}],
)
async def test_a_crafted_cursor_is_refused_not_a_crash(client: Client, crafted: object) -> None:
    await client.enqueue("t")
    with pytest.raises(InvalidTask, match="invalid cursor"):
        await client.list_tasks(cursor=_cursor(crafted))


async def test_a_cursor_past_the_end_is_an_empty_last_page(client: Client) -> None:
    await client.enqueue("t")
    page = await client.list_tasks(cursor=_cursor([7, 0, 0]))
    assert (page.tasks, page.next_cursor) == ([], None)
    page = await client.list_tasks(cursor=_cursor([0, 1, 2**31]))  # past the queued one
    assert page.tasks == []


async def test_stats_report_the_age_of_the_oldest_queued_task(client: Client) -> None:
    await client.enqueue("t")
    await asyncio.sleep(0.2)  # the first task ages
    await client.enqueue("t", priority=5)
    (stats,) = await client.stats("default")
    assert stats.queued == 2
    assert stats.oldest_age is not None
    assert stats.oldest_age >= 0.2


async def test_live_workers_are_registered(client: Client, start_worker: StartWorker) -> None:
    worker = await start_worker(Registry(), queues=["default", "mail"])

    async def registered() -> bool:
        return [w.id for w in await client.workers()] == [worker.id]

    await eventually(registered)
    (info,) = await client.workers()
    assert info.details["queues"] == ["default", "mail"]
