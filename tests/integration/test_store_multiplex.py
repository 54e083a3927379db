"""The store's shared connection for hot commands: killed connections, lost scripts,
cancelled calls, commands sent twice."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from arqd.client import Client
from arqd.core.errors import InvalidTask
from arqd.core.lease import Answer
from arqd.core.settings import Settings
from arqd.core.task import NewTask
from arqd.store import scripts
from arqd.store.codec import decode_enqueued, enqueue_args
from arqd.store.connection import WORKER, connect
from arqd.store.store import Store
from conftest import RedisServer, blocked_clients, eventually, until_blocked


async def _kill_connections(store: Store) -> None:
    """Kill every client connection but the one sending the kill: the shared one too."""
    shared = int(await store.scripts.multiplexer.call("CLIENT", "ID"))
    killed = await store.redis.client_kill_filter(_type="normal", skipme=True)
    assert int(killed) >= 1
    left = await store.redis.client_list(_type="normal")
    assert shared not in {int(c["id"]) for c in left}, "the shared connection survived"


async def test_a_killed_connection_is_replaced_and_the_call_goes_through(
    client: Client, store: Store
) -> None:
    await client.enqueue("echo", 1)
    await _kill_connections(store)
    task = await client.enqueue("echo", 2)
    assert (await client.get(task.id)) is not None


async def test_scripts_flushed_from_redis_are_loaded_again(client: Client, store: Store) -> None:
    await client.enqueue("echo", 1)
    await store.redis.script_flush()
    task = await client.enqueue("echo", 2)
    assert (await client.get(task.id)) is not None


async def test_a_reply_error_leaves_the_connection_usable(store: Store) -> None:
    await store.scripts.multiplexer.call("SET", "multiplex:test:key", "x")
    with pytest.raises(ResponseError):
        await store.scripts.multiplexer.call("INCR", "multiplex:test:key")
    assert await store.scripts.multiplexer.call("GET", "multiplex:test:key") == b"x"
    await store.redis.delete("multiplex:test:key")


async def test_a_call_cancelled_mid_flight_never_leaks_its_reply(store: Store) -> None:
    await store.scripts.multiplexer.call("SET", "multiplex:test:a", "a")
    slow = asyncio.ensure_future(
        store.scripts.multiplexer.call("BLPOP", "multiplex:test:empty", "0.3")
    )
    await until_blocked(store.redis)
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow

    async def timed_out() -> bool:  # Redis has sent the BLPOP's reply (nil) by then
        return await blocked_clients(store.redis) == 0

    await eventually(timed_out)
    for _ in range(3):
        assert await store.scripts.multiplexer.call("GET", "multiplex:test:a") == b"a"
    await store.redis.delete("multiplex:test:a")


async def test_the_same_task_twice_in_a_batch_is_refused(client: Client) -> None:
    task = NewTask("echo", 1)
    with pytest.raises(InvalidTask, match="twice"):
        await client.enqueue_many([task, task])


async def test_an_enqueue_sent_again_does_not_queue_the_task_twice(
    store: Store, client: Client
) -> None:
    """An enqueue retried after its reply was lost (the same task id) finds the task there:
    it is neither overwritten nor pushed onto the ready list a second time."""
    task = NewTask("echo", 1)
    assert [(o.id, o.created) for o in await store.tasks.enqueue([task])] == [(task.id, True)]
    assert [(o.id, o.created) for o in await store.tasks.enqueue([task])] == [(task.id, False)]
    again = await client.enqueue_many([task])
    assert again[0].id == task.id
    ready = await store.redis.lrange(store.keys.ready("default", 0), 0, -1)
    assert ready == [task.id.encode()]
    (stats,) = await client.stats("default")
    assert stats.queued == 1


async def test_a_batch_sent_again_after_part_of_it_landed_creates_only_the_rest(
    store: Store, client: Client
) -> None:
    """The enqueue script checks whether any task of a call is there already in one
    EXISTS; when some are, each is found, and only the others are created, in order."""
    tasks = [NewTask("echo", n) for n in range(5)]
    tasks[3] = NewTask("echo", 3, priority=2, max_retries=1)  # one with options
    assert [(o.id, o.created) for o in await store.tasks.enqueue(tasks[:2])] == [
        (t.id, True) for t in tasks[:2]
    ]
    outcomes = await store.tasks.enqueue(tasks)
    assert [(o.id, o.created) for o in outcomes] == [(t.id, n >= 2) for n, t in enumerate(tasks)]
    ready = await store.redis.lrange(store.keys.ready("default", 0), 0, -1)
    assert ready[::-1] == [t.id.encode() for n, t in enumerate(tasks) if n != 3]
    high = await store.redis.lrange(store.keys.ready("default", 2), 0, -1)
    assert high == [tasks[3].id.encode()]
    stored = await client.get(tasks[3].id)
    assert stored is not None
    assert (stored.priority, stored.max_retries) == (2, 1)
    (stats,) = await client.stats("default")
    assert stats.queued == 5


async def test_a_batch_cancelled_while_in_flight_is_all_or_none(client: Client) -> None:
    """The client makes its snapshots while Redis runs the batch's one script call. A
    caller cancelled meanwhile gets CancelledError; the batch landed whole or not at all,
    and the client goes on working."""
    for turns in range(4):  # cancelled before the send, and at points after it
        tasks = [NewTask("echo") for _ in range(500)]
        batch = asyncio.create_task(client.enqueue_many(tasks))
        for _ in range(turns):
            await asyncio.sleep(0)
        batch.cancel()
        with pytest.raises(asyncio.CancelledError):
            await batch
    follow = await client.enqueue("echo", "after")
    assert await client.get(follow.id) is not None
    (stats,) = await client.stats("default")
    assert (stats.queued - 1) % 500 == 0


async def test_one_script_call_holding_a_task_twice_creates_it_once(store: Store) -> None:
    """Clients refuse such a batch; the script, called directly, still makes one task and
    answers that the second copy was there already."""
    task = NewTask("echo", 1)
    once = enqueue_args(task, 1000, 60_000)
    reply = await store.redis.eval(
        scripts.source("enqueue"),
        1,
        store.keys.queue("default"),
        store.settings.events_max,
        2,
        *once,
        *once,
    )
    assert [(o.id, o.created) for o in decode_enqueued(reply, [task.id, task.id])] == [
        (task.id, True),
        (task.id, False),
    ]
    ready = await store.redis.lrange(store.keys.ready("default", 0), 0, -1)
    assert ready == [task.id.encode()]


async def test_an_answer_sent_again_is_refused(store: Store, client: Client) -> None:
    """A finish retried after its reply was lost must not record the attempt twice (a
    returned task would otherwise be queued twice), in a later call or the same one."""
    first = await client.enqueue("echo", 1)
    second = await client.enqueue("echo", 2)
    fetched = await store.leases.dequeue("default", 2, "w")
    by_id = {lease.id: lease for lease in fetched.leases}
    returned = Answer(by_id[first.id], "returned")
    assert await store.leases.finish("default", [returned]) == [True]
    assert await store.leases.finish("default", [returned]) == [False]
    done = Answer(by_id[second.id], "succeeded", b"2")
    assert await store.leases.finish("default", [done, done]) == [True, False]
    stats = await store.tasks.stats("default")
    assert (stats.queued, stats.active, stats.succeeded) == (1, 0, 1)


async def test_a_replaced_connection_goes_back_to_the_pool(settings: Settings) -> None:
    """Each broken shared connection is returned to the pool when it is replaced: Redis
    restarting many times must not use up the pool's connections one by one. The pool
    here holds 3, so a connection kept back each time would exhaust it (a ConnectionError
    once ``pool_wait`` passes) well before the fifth replacement."""
    small = replace(WORKER, max_connections=3, pool_wait=1.0)
    store = Store(connect(settings.redis_url or "", small), settings)
    client = Client(store)
    try:
        await client.enqueue("echo", 0)
        for i in range(1, 6):
            await _kill_connections(store)
            await client.enqueue("echo", i)  # the broken link fails it over to redis-py's path
            task = await client.enqueue("echo", -i)  # the next opens a fresh shared connection
            assert (await client.get(task.id)) is not None
    finally:
        await client.close()


async def test_calls_while_redis_is_down_fail_and_the_first_after_it_returns_succeeds(
    tmp_path: Path,
) -> None:
    """Each call while Redis is down fails with a connection error; the broken shared
    connection is handed back to the pool once, however many calls fail, so no connection
    is ever given to two users."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    settings = Settings(redis_url=server.url, key_prefix="down")
    client = Client(Store(connect(server.url), settings))
    try:
        await client.enqueue("echo", 1)
        server.stop()
        for _ in range(3):
            with pytest.raises(RedisConnectionError):
                await client.enqueue("echo", 2)
        server.start()

        task = await client.enqueue("echo", 3)

        assert (await client.get(task.id)) is not None
        # A connection handed back twice would be given to two of these callers at once:
        # one would read the other's reply, or redis-py would refuse the second read.
        many = 50
        echoed = await asyncio.gather(*(client.store.redis.echo(f"r{n}") for n in range(many)))
        assert echoed == [f"r{n}".encode() for n in range(many)]
    finally:
        await client.close()
        server.stop()
