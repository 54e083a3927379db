"""The event WebSocket: filters, new queues, bad parameters, and clients too slow to keep up."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from arqd.api import create_app
from arqd.api.state import ApiState
from arqd.store.events import just_before
from arqd.store.store import Store
from conftest import RedisServer
from e2e.live import AUTH, LiveServer, events_of, next_message, settings_for, wait_until

SLOW_BUFFER = 20


async def post(http: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await http.post("/tasks", json=body)
    assert response.status_code == 201, response.text
    task_id: str = response.json()["id"]
    return task_id


async def test_a_task_id_filter_sends_only_that_tasks_events(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    wanted = await post(http, {"type": "sleep", "payload": {"seconds": 0.2}})
    url = f"{live.ws_url}/events?task_id={wanted}&last_event_id=0-0"
    async with connect(url, additional_headers=AUTH) as ws:
        await post(http, {"type": "echo"})
        events = await events_of(ws, wanted, until="succeeded")
        other = await post(http, {"type": "echo"})
        await post(http, {"type": "sleep", "payload": {"seconds": 0}})
        # The filter drops the other tasks' events, so the next message would be a new one of
        # the wanted task: there is none.
        with pytest.raises(TimeoutError):
            await next_message(ws, timeout=1.0)
    assert [e["task_id"] for e in events] == [wanted] * 3
    assert other != wanted


async def test_queue_and_type_filters(live: LiveServer, http: httpx.AsyncClient) -> None:
    base = f"{live.ws_url}/events"
    async with (
        connect(f"{base}?queue=side", additional_headers=AUTH) as by_queue,
        connect(f"{base}?type=sleep", additional_headers=AUTH) as by_type,
    ):
        await post(http, {"type": "echo"})
        side = await post(http, {"type": "echo", "queue": "side"})
        nap = await post(http, {"type": "sleep", "payload": {"seconds": 0}})
        queued_on_side = await next_message(by_queue)
        first_sleep = await next_message(by_type)
    assert (queued_on_side["task_id"], queued_on_side["queue"]) == (side, "side")
    assert (first_sleep["task_id"], first_sleep["type"]) == (nap, "sleep")


async def test_a_feed_on_all_queues_picks_up_a_queue_created_after_it_connected(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    async with connect(f"{live.ws_url}/events", additional_headers=AUTH) as ws:
        task_id = await post(http, {"type": "echo", "queue": "brand-new"})
        seen = await events_of(ws, task_id, until="queued")
    assert seen[0]["queue"] == "brand-new"


@pytest.mark.parametrize(
    "query", ["queue=a/b", "last_event_id=yesterday", "task_id=" + "x" * 300, "type=" + "y" * 200]
)
async def test_bad_parameters_are_refused_with_422(live: LiveServer, query: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{live.ws_url}/events?{query}", additional_headers=AUTH):
            pass
    assert refused.value.response.status_code == 422
    assert refused.value.response.headers["content-type"] == "application/problem+json"


@pytest.fixture
def small_buffer(redis_server: RedisServer) -> Iterator[LiveServer]:
    settings = settings_for(redis_server.url, events_max=100_000)
    server = LiveServer(create_app(settings, event_buffer=SLOW_BUFFER))
    server.start()
    yield server
    server.stop()


def tiny_socket(port: int) -> socket.socket:
    """A connected socket with a small receive buffer: a reader that falls behind, fast."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    return sock


async def drain(ws: ClientConnection) -> ConnectionClosed:
    """Read until the server closes; return how it closed."""
    while True:
        try:
            await ws.recv()
        except ConnectionClosed as closed:
            return closed


async def test_a_client_too_slow_to_keep_up_is_closed_with_4008(small_buffer: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=small_buffer.url, headers=AUTH) as http:
        for _ in range(5):
            batch = {"tasks": [{"type": "echo", "queue": "flood", "payload": "x" * 200}] * 1000}
            assert (await http.post("/tasks/batch", json=batch)).status_code == 201
    state: ApiState = small_buffer.app.state.arqd
    url = f"{small_buffer.ws_url}/events?queue=flood&last_event_id=0-0"
    sock = tiny_socket(small_buffer.port)
    async with connect(url, additional_headers=AUTH, sock=sock, max_queue=1) as ws:

        async def closed_for_being_slow() -> bool:
            return state.slow_consumers_closed == 1

        await wait_until(closed_for_being_slow)
        closed = await drain(ws)
    assert closed.rcvd is not None
    assert closed.rcvd.code == 4008
    assert "too slow" in closed.rcvd.reason


async def test_resuming_all_queues_never_skips_another_queues_event_with_the_same_id(
    live: LiveServer, http: httpx.AsyncClient, store: Store
) -> None:
    for queue in ("a", "b"):  # both queues exist
        await post(http, {"type": "echo", "queue": queue})
    # Each stream numbers its own entries: two queues' events in one millisecond share an id.
    same_id = f"{int(time.time() * 1000) + 60_000}-0"
    for queue in ("a", "b"):
        fields = {"task": f"t-{queue}", "event": "queued", "status": "queued", "type": "x"}
        await store.redis.xadd(store.keys.events(queue), fields, id=same_id)  # type: ignore[arg-type]

    async with connect(
        f"{live.ws_url}/events?last_event_id={same_id}", additional_headers=AUTH
    ) as ws:
        replayed = [await next_message(ws), await next_message(ws)]
    assert sorted((e["queue"], e["event_id"]) for e in replayed) == [("a", same_id), ("b", same_id)]

    # With one queue, its stream's order is exact: nothing is repeated.
    url = f"{live.ws_url}/events?queue=a&last_event_id={same_id}"
    async with connect(url, additional_headers=AUTH) as ws:
        with pytest.raises(TimeoutError):
            await next_message(ws, timeout=0.5)


def test_just_before_an_id() -> None:
    assert just_before("1700000000000-5") == "1700000000000-4"
    assert just_before("1700000000000-0") == f"1699999999999-{2**64 - 1}"
    assert just_before("0-0") == "0-0"


@pytest.mark.parametrize("one_queue", [True, False])
async def test_events_trimmed_before_a_resume_are_announced_as_a_gap(
    live: LiveServer, http: httpx.AsyncClient, store: Store, one_queue: bool
) -> None:
    batch = {"tasks": [{"type": "echo", "queue": "trim", "delay": 600}] * 300}  # none runs
    assert (await http.post("/tasks/batch", json=batch)).status_code == 201
    key = store.keys.events("trim")
    oldest = await first_id(store, key)
    await store.redis.xtrim(key, maxlen=10)  # as a burst past ARQD_EVENTS_MAX would (~10)
    kept = await first_id(store, key)
    query = "queue=trim&" if one_queue else ""
    url = f"{live.ws_url}/events?{query}last_event_id={oldest}"
    # The client keeps what it does not read (its default queue, full, would stop it
    # reading the server's answer to its close until its close timeout).
    async with connect(url, additional_headers=AUTH, max_queue=None) as ws:
        gap = await next_message(ws)
        first = await next_message(ws)
    assert gap["event"] == "gap"
    assert gap["queue"] == "trim"
    assert gap["missed"] is None  # the feed did not read them: how many is not known
    assert gap["resumes_at"] == kept == first["event_id"]


async def first_id(store: Store, key: str) -> str:
    entries: list[tuple[bytes, Any]] = await store.redis.xrange(key, count=1)  # type: ignore[assignment]
    return entries[0][0].decode()
