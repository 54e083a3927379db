"""Load shedding: past ARQD_MAX_INFLIGHT, a quick 503; nothing the API accepted is lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from arqd.api import create_app
from arqd.api.state import ApiState
from arqd.client import Client
from arqd.core.settings import Settings
from arqd.store.connection import connect
from arqd.store.store import Store
from conftest import RedisServer
from e2e.live import AUTH, LiveServer, settings_for, wait_until

CAP = 2


@pytest.fixture
def settings(redis_server: RedisServer) -> Settings:
    return settings_for(redis_server.url, max_inflight=CAP)


@pytest.fixture
def served(settings: Settings) -> Iterator[LiveServer]:
    server = LiveServer(create_app(settings))  # no worker: tasks stay queued
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with Client(Store(connect(settings.redis_url or ""), settings)) as c:
        yield c


@pytest.fixture
async def http(served: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served.url, headers=AUTH, timeout=30) as c:
        yield c


async def in_flight(served: LiveServer, count: int) -> None:
    state: ApiState = served.app.state.arqd

    async def reached() -> bool:
        return state.inflight == count

    await wait_until(reached)


def assert_shed(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:arqd:problem:overloaded"


async def test_over_the_cap_requests_are_refused_at_once_and_probes_still_answer(
    served: LiveServer, http: httpx.AsyncClient, client: Client
) -> None:
    accepted = [(await http.post("/tasks", json={"type": "echo"})).json()["id"] for _ in range(2)]
    held = [
        asyncio.create_task(http.get(f"/tasks/{task_id}", params={"wait": 30}))
        for task_id in accepted
    ]
    await in_flight(served, CAP)

    for _ in range(3):
        assert_shed(await http.post("/tasks", json={"type": "echo"}))
        assert_shed(await http.post("/tasks/batch", json={"tasks": [{"type": "echo"}] * 5}))
        assert_shed(await http.get("/queues"))
    for probe in ("/health", "/ready", "/metrics"):
        assert (await http.get(probe)).status_code == 200

    for task_id in accepted:  # finishing the held tasks lets their long polls answer
        await client.cancel(task_id)
    for response in await asyncio.gather(*held):
        assert (response.status_code, response.json()["status"]) == (200, "cancelled")
    await in_flight(served, 0)

    after = await http.post("/tasks", json={"type": "echo"})
    assert after.status_code == 201
    accepted.append(after.json()["id"])
    for task_id in accepted:
        assert await client.get(task_id) is not None
    (stats,) = await client.stats()
    assert (stats.queued, stats.cancelled) == (1, 2)  # the shed requests left no trace


async def test_under_a_flood_every_answer_is_201_or_503_and_each_201_is_kept(
    served: LiveServer, http: httpx.AsyncClient, client: Client
) -> None:
    responses = await asyncio.gather(
        *(http.post("/tasks", json={"type": "echo", "payload": n}) for n in range(40))
    )
    assert {r.status_code for r in responses} <= {201, 503}
    accepted = [r.json() for r in responses if r.status_code == 201]
    assert accepted, "the cap refuses only what is over it"
    for task in accepted:
        kept = await client.get(task["id"])
        assert kept is not None
        assert kept.payload == task["payload"]
    (stats,) = await client.stats()
    assert stats.queued == len(accepted)
    for response in responses:
        if response.status_code == 503:
            assert_shed(response)
    await in_flight(served, 0)
