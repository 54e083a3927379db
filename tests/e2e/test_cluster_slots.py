"""On a Redis Cluster no command spans two slots: every script and every route of the
API and the dashboard runs with queues on every master, and no master counts a CROSSSLOT
error (``INFO errorstats``) while nothing answers with a server error."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect

from arqd import demo
from arqd.api import create_app
from arqd.client import Client
from arqd.core.settings import Settings
from arqd.core.task import NewTask
from arqd.core.workflows import chain, group
from arqd.resilience.breaker import BreakerPolicy
from arqd.resilience.circuit import CircuitBreaker
from arqd.store.keys import Keys
from arqd.worker import Registry, Worker
from conftest import eventually
from e2e.live import AUTH, LiveServer, settings_for
from topologies import ClusterSetup, crossslot_errors
from ui.conftest import signed_in


def queues_on_every_master(cluster: ClusterSetup, keys: Keys) -> list[str]:
    """Two queue names on each master (so a worker's queues span masters and slots)."""
    found: dict[int, list[str]] = {port: [] for port in cluster.masters()}
    for n in itertools.count():
        name = f"q{n}"
        held = found[cluster.master_port_of_slot(keys.slot(name))]
        if len(held) < 2:
            held.append(name)
        if all(len(names) == 2 for names in found.values()):
            return [name for names in found.values() for name in names]
    raise AssertionError("unreachable")


@pytest.fixture
def settings(cluster_setup: ClusterSetup) -> Settings:
    return settings_for(cluster_setup.url)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with Client.connect(settings.redis_url or "", settings) as own:
        yield own


async def test_no_script_or_route_spans_slots_on_a_cluster(
    cluster_setup: ClusterSetup, settings: Settings, client: Client
) -> None:
    before = crossslot_errors(cluster_setup.masters())
    queues = queues_on_every_master(cluster_setup, client.store.keys)
    server = LiveServer(create_app(settings, with_worker=True))
    server.start()
    running: list[asyncio.Task[None]] = []
    worker = await start_worker(client, queues, running)
    try:
        await python_side(client, queues)
        await workflows_side(client, queues)
        task_ids = await http_side(server, queues)
        keys = client.store.keys
        masters = {
            q: f"127.0.0.1:{cluster_setup.master_port_of_slot(keys.slot(q))}" for q in queues
        }
        ui_side(server, masters, task_ids)
    finally:
        worker.stop()
        await asyncio.wait_for(asyncio.gather(*running), 30)
        server.stop()
    assert crossslot_errors(cluster_setup.masters()) == before


async def start_worker(
    client: Client, queues: list[str], running: list[asyncio.Task[None]]
) -> Worker:
    """A worker over every queue (an idle wait on each master), whose ``flaky`` type has
    a breaker and a rate limit (the dequeue and finish scripts keep both)."""
    registry = Registry(types=dict(demo.registry.types))

    @registry.task(
        max_retries=0, breaker=BreakerPolicy(threshold=1, timeout=0.2), rate_limit="1000/s"
    )
    async def flaky(payload: Any) -> None:
        raise RuntimeError("flaky")

    worker = Worker(registry, client.store, queues=queues, concurrency=8)
    running.append(asyncio.create_task(worker.run(install_signals=False)))
    return worker


async def python_side(client: Client, queues: list[str]) -> None:
    """Each script (enqueue, dequeue, finish, heartbeat, cancel, retry, stats, breaker,
    ratelimit, reset_breaker, pause, resume) and each read of the client, over every queue."""
    feed = client.events()
    seen: list[str] = []

    async def follow() -> None:
        async for item in feed:
            seen.append(getattr(item, "queue", ""))

    following = asyncio.create_task(follow())
    mixed = [NewTask("echo", {"n": i}, queue=q) for i, q in enumerate(queues * 3)]
    done = await client.enqueue_many(mixed)  # one script call per queue, at once
    slow = [await client.enqueue("sleep", {"seconds": 0.6}, queue=q) for q in queues]
    for task in done + slow:
        await client.wait(task.id, timeout=20)  # the idle waits, heartbeats, answers
    failed = [await client.enqueue("flaky", queue=q) for q in queues]
    for task in failed:
        assert (await client.wait(task.id, timeout=20)).status == "failed"
        await client.retry(task.id)
        await client.cancel(task.id)
    later = await client.enqueue("echo", queue=queues[-1], delay=60)
    assert (await client.get(later.id)) is not None  # looked up over every queue
    assert (await client.cancel(later.id)).status == "cancelled"
    assert len(await client.stats()) >= len(queues)
    assert (await client.list_tasks(queues[0], "succeeded")).tasks
    assert (await client.list_tasks()).tasks  # over every queue
    assert await client.workers()
    breakers = CircuitBreaker("payments", client.store, BreakerPolicy(threshold=1, timeout=60))
    with pytest.raises(RuntimeError):
        async with breakers:
            raise RuntimeError("down")
    names = [b.name for b in await client.breakers()]
    assert "payments" in names
    assert any(n.startswith("task:") for n in names)
    for name in names:
        await client.reset_breaker(name)
    assert await client.rate_limiter("http").take([("a", 10.0, 5), ("b", 10.0, 5)])
    await client.rate_limiter("http").note_refused({"key": "a"})
    await client.audit("tester", "retry", "t", 1)
    assert await client.audit_log()
    await client.topology()
    for queue in queues:
        await client.placement(queue)
        await client.queues.pause(queue, reason="slots")
        await client.queues.pause(queue, "echo")
        await client.queues.resume(queue, "echo")
        assert not (await client.queues.resume(queue)).paused
    await eventually(lambda: _true(set(queues) <= set(seen)))
    feed.close()
    following.cancel()


async def workflows_side(client: Client, queues: list[str]) -> None:
    """The workflow scripts on every queue: start (a chain of groups), a member's end in
    finish, a failure's error callback, a retry that re-opens, a cancel, the reads; every
    other workflow with members on a queue of another master (the relay's scripts)."""
    for i, queue in enumerate(queues):
        there = queue if i % 2 else queues[(i + 2) % len(queues)]
        flow = chain(
            group([NewTask("echo", 1), NewTask("flaky", queue=there)], on_failure="fail"),
            NewTask("echo", queue=there),
            on_error=NewTask("echo", queue=there),
        )
        state = await client.workflows.start(flow, queue)
        await eventually(partial(_failed, client, state.id, queue, 1), timeout=20)
        await client.workflows.retry(state.steps[0].members[1].id, there)
        await eventually(partial(_failed, client, state.id, queue, 2), timeout=20)
        sleeping = group([NewTask("sleep", {"seconds": 30}, queue=there)], on_failure="ignore")
        running = await client.workflows.start(sleeping, queue)
        assert (await client.workflows.cancel(running.id)).status == "cancelled"


async def _failed(client: Client, workflow_id: str, queue: str, times: int) -> bool:
    """Failed ``times`` times (flaky always fails, and a retry re-opens it), each error
    callback run."""
    state = await client.workflows.get(workflow_id, queue)
    ran = [m.status for m in state.error_callbacks] == ["succeeded"] * times
    return state.status == "failed" and ran


async def _true(value: bool) -> bool:
    return value


async def http_side(server: LiveServer, queues: list[str]) -> list[str]:
    """Every route of the API, and both event feeds; the ids of the tasks it made."""
    async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=20) as http:
        created = []
        for queue in queues:
            answer = await http.post("/tasks", json={"type": "echo", "queue": queue})
            assert answer.status_code == 201, answer.text
            created.append(answer.json()["id"])
        batch = [{"type": "echo", "queue": q} for q in queues]
        answer = await http.post("/tasks/batch", json={"tasks": batch})
        assert answer.status_code == 201, answer.text
        for task_id in created:
            answer = await http.get(f"/tasks/{task_id}", params={"wait": 10})
            assert answer.status_code == 200
            assert answer.json()["status"] == "succeeded"
        for queue in queues:
            assert (await http.get("/tasks", params={"queue": queue})).status_code == 200
        assert (await http.get("/tasks")).status_code == 200
        late = await http.post("/tasks", json={"type": "echo", "queue": queues[0], "delay": 60})
        late_id = late.json()["id"]
        assert (await http.delete(f"/tasks/{late_id}")).status_code == 200
        assert (await http.post(f"/tasks/{late_id}/retry")).status_code == 200
        for action in ("pause", "resume"):
            answer = await http.post(f"/queues/{queues[0]}/{action}", json={"type": "echo"})
            assert answer.status_code == 200, answer.text
        for path in ("/health", "/ready", "/queues", "/workers", "/metrics", "/breakers"):
            answer = await http.get(path)
            assert answer.status_code == 200, (path, answer.text)
        assert (await http.post("/breakers/payments/reset")).status_code in (200, 404)
        for queue in queues:
            group_step = {"group": [{"type": "echo"}], "on_failure": "fail"}
            steps = [group_step, {"task": {"type": "echo"}}]
            made = await http.post("/workflows", json={"steps": steps, "queue": queue})
            assert made.status_code == 201, made.text
            path = f"/workflows/{made.json()['id']}"
            assert (await http.get(path, params={"queue": queue})).status_code == 200
            assert (await http.post(f"{path}/cancel")).status_code in (200, 409)
    await feeds(server, queues)
    return created


async def feeds(server: LiveServer, queues: list[str]) -> None:
    """``WS /events`` over every queue sees the queues of every master; the system feed
    opens."""
    url = f"{server.ws_url}/events?last_event_id=0-0"
    async with ws_connect(url, additional_headers=AUTH) as ws:
        seen: set[str] = set()
        while not set(queues) <= seen:
            event = json.loads(await asyncio.wait_for(ws.recv(), 10))
            seen.add(event.get("queue", ""))
    async with ws_connect(f"{server.ws_url}/events/system", additional_headers=AUTH):
        pass


def ui_side(server: LiveServer, masters: dict[str, str], task_ids: list[str]) -> None:
    """The dashboard's pages, each queue's (with a text search) and each task's among them;
    the overview shows each queue's master."""
    queues = list(masters)
    with signed_in(server) as http:
        pages = ["/ui", "/ui/workers", "/ui/breakers", "/ui/audit"]
        pages += [f"/ui/queues/{queue}" for queue in queues]
        pages += [f"/ui/queues/{queue}?q=echo&status=succeeded" for queue in queues]
        pages += [f"/ui/tasks/{task_id}" for task_id in task_ids]
        for page in pages:
            answer = http.get(page)
            assert answer.status_code == 200, (page, answer.text[:500])
        overview = http.get("/ui").text
        assert "Redis Cluster: the masters are" in overview
        for queue, master in masters.items():  # each queue's row names its master
            row = overview[overview.index(f'data-queue="{queue}"') :]
            assert f"<code>{master}</code>" in row[: row.index("</tr>")]
