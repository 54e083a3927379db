"""The whole loop over real HTTP and a real WebSocket: enqueue, run, read back, watch."""

from __future__ import annotations

import httpx
import pytest
from websockets.asyncio.client import connect

from e2e.live import AUTH, LiveServer, events_of, finished

pytestmark = pytest.mark.topologies()  # the API's behaviour on every topology


async def test_a_task_enqueued_over_http_runs_and_its_events_arrive_in_order(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    async with connect(f"{live.ws_url}/events?type=echo", additional_headers=AUTH) as ws:
        response = await http.post("/tasks", json={"type": "echo", "payload": {"hello": "world"}})
        assert response.status_code == 201
        task = response.json()
        assert response.headers["location"] == f"/tasks/{task['id']}"
        assert (task["status"], task["type"], task["queue"]) == ("queued", "echo", "default")

        events = await events_of(ws, task["id"], until="succeeded")

    assert [e["event"] for e in events] == ["queued", "active", "succeeded"]
    assert [e["status"] for e in events] == ["queued", "active", "succeeded"]
    assert [e["attempt"] for e in events] == [0, 1, 1]
    for event in events:
        assert (event["type"], event["queue"], event["task_id"]) == ("echo", "default", task["id"])
        assert event["timestamp"].endswith("Z")
    assert [e["event_id"] for e in events] == sorted(
        (e["event_id"] for e in events), key=lambda i: tuple(map(int, i.split("-")))
    )

    done = await http.get(response.headers["location"])
    assert done.status_code == 200
    body = done.json()
    assert (body["status"], body["attempts"]) == ("succeeded", 1)
    assert body["result"] == {"hello": "world"}
    assert body["error"] is None
    assert body["created_at"] <= body["started_at"] <= body["finished_at"]


async def test_a_reconnect_with_last_event_id_replays_what_was_missed_then_goes_live(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    url = f"{live.ws_url}/events"
    async with connect(url, additional_headers=AUTH) as ws:
        first = (await http.post("/tasks", json={"type": "echo", "payload": 1})).json()
        seen = await events_of(ws, first["id"], until="succeeded")
    last_seen = seen[-1]["event_id"]

    # While no client listens, another task runs to the end.
    missed = (await http.post("/tasks", json={"type": "echo", "payload": 2})).json()
    await finished(http, missed["id"])

    async with connect(f"{url}?last_event_id={last_seen}", additional_headers=AUTH) as ws:
        replayed = await events_of(ws, missed["id"], until="succeeded")
        live_task = (await http.post("/tasks", json={"type": "echo", "payload": 3})).json()
        live_events = await events_of(ws, live_task["id"], until="succeeded")

    assert [e["event"] for e in replayed] == ["queued", "active", "succeeded"]
    assert [e["event"] for e in live_events] == ["queued", "active", "succeeded"]


async def test_the_events_of_a_retried_task_carry_its_error(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    response = await http.post("/tasks", json={"type": "fail", "payload": {"times": 1}})
    task = response.json()
    async with connect(
        f"{live.ws_url}/events?task_id={task['id']}&last_event_id=0-0", additional_headers=AUTH
    ) as ws:
        events = await events_of(ws, task["id"], until="succeeded")

    assert [e["event"] for e in events] == [
        "queued",
        "active",
        "retrying",
        "queued",
        "active",
        "succeeded",
    ]
    retrying = events[2]
    assert retrying["error"]["type"] == "DemoFailure"
    assert retrying["error"]["message"] == "demo failure on attempt 1"
    done = await finished(http, task["id"])
    assert (done["status"], done["attempts"]) == ("succeeded", 2)
    assert done["result"] == {"succeeded_on_attempt": 2}
