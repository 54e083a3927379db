"""Redis killed under a running API: fast 503s and a degraded /health; back by itself after."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Iterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from arqd.api import create_app
from conftest import RedisServer
from e2e.live import AUTH, LiveServer, finished, settings_for, wait_until


@pytest.fixture
def served(own_redis: RedisServer) -> Iterator[LiveServer]:
    server = LiveServer(create_app(settings_for(own_redis.url), with_worker=True))
    server.start()
    yield server
    server.stop()


def kill(redis: RedisServer) -> None:
    """SIGKILL. It has no persistence: it comes back empty, the hardest case."""
    assert redis.process is not None
    redis.process.kill()
    redis.process.wait(10)
    redis.process = None


async def timed(request: Awaitable[httpx.Response]) -> httpx.Response:
    """The response, which must come sooner than the API's Redis socket timeout (3 s):
    a 503 that waited for a timeout would not be failing fast."""
    started = time.monotonic()
    response = await request
    assert time.monotonic() - started < 2.0, "requests must fail fast"
    return response


async def assert_unavailable(request: Awaitable[httpx.Response]) -> None:
    response = await timed(request)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] in {"1", "2", "3", "4", "5"}
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:arqd:problem:redis-unavailable"


async def test_redis_down_means_fast_503s_then_service_resumes_without_a_restart(
    own_redis: RedisServer, served: LiveServer
) -> None:
    async with httpx.AsyncClient(base_url=served.url, headers=AUTH, timeout=10) as http:
        before = (await http.post("/tasks", json={"type": "echo", "payload": "before"})).json()
        await finished(http, before["id"])
        async with connect(f"{served.ws_url}/events", additional_headers=AUTH) as ws:
            kill(own_redis)

            await assert_unavailable(http.post("/tasks", json={"type": "echo"}))
            await assert_unavailable(http.get(f"/tasks/{before['id']}"))
            await assert_unavailable(http.get("/tasks"))
            await assert_unavailable(http.post("/tasks/batch", json={"tasks": [{"type": "echo"}]}))
            await assert_unavailable(http.get("/ready"))
            health = await timed(http.get("/health"))
            assert health.status_code == 503
            assert health.headers["retry-after"] == "1"
            assert health.json()["status"] == "degraded"
            assert health.json()["queue_length"] is None

            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1013

        own_redis.start()  # same port, no data

        async def accepted() -> httpx.Response | None:
            response = await http.post("/tasks", json={"type": "echo", "payload": "after"})
            return response if response.status_code == 201 else None

        after = (await wait_until(accepted)).json()
        assert (await http.get("/health")).json()["status"] == "ok"
        assert (await http.get("/ready")).status_code == 200
        done = await finished(http, after["id"], timeout=30)
        assert (done["status"], done["result"]) == ("succeeded", "after")
