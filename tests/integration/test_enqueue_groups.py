"""Single enqueues made while another is on its way to Redis go together in one script
call (store/grouping.py), against a real Redis: each caller still gets its own answer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from arqd.client import Client
from arqd.core.errors import InvalidTask
from arqd.core.settings import Settings
from arqd.store.connection import connect
from arqd.store.store import Store
from conftest import RedisServer


async def script_calls(store: Store) -> int:
    stats = await store.redis.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_concurrent_enqueues_share_script_calls_and_keep_their_order(
    store: Store, client: Client
) -> None:
    await client.enqueue("warm", 0)  # connect and load the scripts
    before = await script_calls(store)
    tasks = await asyncio.gather(*(client.enqueue("echo", n) for n in range(50)))
    calls = await script_calls(store) - before
    assert calls == 2  # the first goes alone; the others, made while it is on its way, together
    assert [task.payload for task in tasks] == list(range(50))
    ready = await store.redis.lrange(store.keys.ready("default", 0), 0, -1)
    assert ready[::-1][1:] == [task.id.encode() for task in tasks]
    for task in tasks:
        stored = await client.get(task.id)
        assert stored is not None
        assert stored.payload == task.payload


async def test_a_group_spanning_queues_puts_each_task_in_its_own(
    store: Store, client: Client
) -> None:
    queues = ["default", "mail", "default", "mail", "reports"]
    tasks = await asyncio.gather(*(client.enqueue("echo", q, queue=q) for q in queues))
    for queue in set(queues):
        ready = await store.redis.lrange(store.keys.ready(queue, 0), 0, -1)
        expected = [t.id.encode() for t, q in zip(tasks, queues, strict=True) if q == queue]
        assert ready[::-1] == expected
    assert {s.queue for s in await client.stats()} == set(queues)


async def test_one_idempotency_key_in_a_group_makes_one_task(client: Client) -> None:
    tasks = await asyncio.gather(
        *(client.enqueue("charge", n, idempotency_key="order-9") for n in range(5))
    )
    assert len({task.id for task in tasks}) == 1
    (stats,) = await client.stats()
    assert stats.queued == 1


async def test_a_bad_task_fails_alone_and_a_cancelled_caller_is_left_out(
    store: Store, client: Client
) -> None:
    first = asyncio.create_task(client.enqueue("echo", "first"))
    left_out = asyncio.create_task(client.enqueue("echo", "left out"))
    bad = asyncio.create_task(client.enqueue("bad name", "bad"))
    last = asyncio.create_task(client.enqueue("echo", "last"))
    await asyncio.sleep(0)  # each has run up to its wait: the first was sent alone
    left_out.cancel()
    with pytest.raises(asyncio.CancelledError):
        await left_out
    with pytest.raises(InvalidTask, match="invalid task type"):
        await bad
    sent = [await first, await last]
    ready = await store.redis.lrange(store.keys.ready("default", 0), 0, -1)
    assert ready[::-1] == [task.id.encode() for task in sent]


async def test_every_caller_in_a_group_hears_that_redis_is_down(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    client = Client(Store(connect(server.url), Settings(redis_url=server.url)))
    try:
        await client.enqueue("echo", 0)
        server.stop()
        outcomes = await asyncio.gather(
            *(client.enqueue("echo", n) for n in range(5)), return_exceptions=True
        )
        assert all(isinstance(o, RedisConnectionError) for o in outcomes), outcomes
        server.start()
        tasks = await asyncio.gather(*(client.enqueue("echo", n) for n in range(5)))
        for task in tasks:
            assert await client.get(task.id) is not None
    finally:
        await client.close()
        server.stop()
