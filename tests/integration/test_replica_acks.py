"""``ARQD_REPLICA_ACKS``: an enqueue (and an operator's cancel or retry) answers only once
that many replicas have it, so an acknowledged task survives a failover; too few in time
is an error that says so (503 over HTTP), and the write stays."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import redis

from arqd.api import create_app
from arqd.client import Client
from arqd.core.errors import ReplicasBehind
from arqd.core.settings import Settings
from arqd.core.task import NewTask
from arqd.sync import SyncClient
from e2e.live import AUTH, LiveServer, settings_for
from topologies import SentinelSetup

pytestmark = pytest.mark.topologies("sentinel")


def replica_of(setup: SentinelSetup) -> redis.Redis:
    master = setup.master_port()
    (port,) = [p for p in setup.ports.values() if p != master]
    return redis.Redis(port=port)


@pytest.fixture
async def acked(settings: Settings) -> AsyncIterator[Client]:
    acking = settings.model_copy(update={"replica_acks": 1})
    async with Client.from_settings(acking) as client:
        yield client


async def test_an_acknowledged_write_is_on_the_replica_when_the_call_returns(
    acked: Client, settings: Settings, sentinel_setup: SentinelSetup
) -> None:
    replica = replica_of(sentinel_setup)
    keys = acked.store.keys
    try:
        one = await acked.enqueue("echo", 1, delay=600)
        assert replica.exists(keys.task("default", one.id)) == 1
        many = await acked.enqueue_many([NewTask("echo", n, delay=600) for n in range(50)])
        assert replica.exists(*(keys.task("default", t.id) for t in many)) == 50
        await acked.cancel(one.id)
        assert replica.hget(keys.task("default", one.id), "s") == b"x"  # cancelled
        await acked.retry(one.id)
        assert replica.hget(keys.task("default", one.id), "s") == b"q"  # queued again
        acking = settings.model_copy(update={"replica_acks": 1})
        with SyncClient(acking) as sync:
            blocking = sync.enqueue("echo", 2, delay=600)
        assert replica.exists(keys.task("default", blocking.id)) == 1
    finally:
        replica.close()


async def test_an_acknowledged_enqueue_waits_for_a_replica_that_is_behind(
    acked: Client, sentinel_setup: SentinelSetup
) -> None:
    replica = replica_of(sentinel_setup)
    try:
        behind = asyncio.create_task(
            asyncio.to_thread(replica.execute_command, "DEBUG", "SLEEP", 0.6)
        )
        await asyncio.sleep(0.1)  # the replica is asleep: it applies nothing meanwhile
        started = time.monotonic()
        task = await acked.enqueue("echo", delay=600)
        waited = time.monotonic() - started
        await behind
        assert waited > 0.3  # answered once the replica had it, not before
        assert replica.exists(acked.store.keys.task("default", task.id)) == 1
    finally:
        replica.close()


async def test_fewer_replicas_than_asked_is_an_error_and_the_write_stays(
    settings: Settings,
) -> None:
    greedy = settings.model_copy(update={"replica_acks": 2, "replica_ack_timeout": 200})
    async with Client.from_settings(greedy) as client:
        task = NewTask("echo", delay=600)
        started = time.monotonic()
        with pytest.raises(ReplicasBehind, match="acknowledged by 1 of the 2 replica"):
            await client.enqueue_task(task)
        assert time.monotonic() - started < 5
        assert await client.get(task.id) is not None  # written on the master all the same
    with SyncClient(greedy) as sync, pytest.raises(ReplicasBehind):
        sync.enqueue("echo")


async def test_over_http_too_few_replicas_is_a_503_with_retry_after(
    sentinel_setup: SentinelSetup,
) -> None:
    greedy = settings_for(sentinel_setup.url, replica_acks=2, replica_ack_timeout=200)
    server = LiveServer(create_app(greedy))
    server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH) as http:
            response = await http.post("/tasks", json={"type": "echo"})
    finally:
        server.stop()
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["type"] == "urn:arqd:problem:replicas-behind"


async def test_no_acknowledged_task_is_lost_in_a_failover(
    acked: Client, sentinel_setup: SentinelSetup
) -> None:
    acknowledged: list[str] = []
    failing_over = asyncio.create_task(asyncio.to_thread(sentinel_setup.failover))
    try:
        while not failing_over.done() or len(acknowledged) < 200:
            # One not acknowledged (an error) the producer would send again.
            with contextlib.suppress(ReplicasBehind, redis.RedisError):
                acknowledged.append((await acked.enqueue("echo", delay=600)).id)
        await failing_over
        found = [await acked.get(task_id) for task_id in acknowledged]
        assert all(task is not None for task in found)
    finally:
        await asyncio.to_thread(sentinel_setup.settle)
