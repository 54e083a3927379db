"""Deduplication over HTTP: ``POST /tasks`` with a ``dedupe`` object answers 200 with the
kept task while its key blocks, and every invalid combination is a 422 naming the field."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from e2e.live import AUTH, LiveServer


async def post(http: httpx.AsyncClient, body: Any) -> httpx.Response:
    return await http.post("/tasks", json=body)


async def test_a_blocked_dedupe_key_returns_the_kept_task_with_200(
    http: httpx.AsyncClient,
) -> None:
    body = {"type": "echo", "payload": 1, "dedupe": {"key": "k", "mode": "debounce", "window": 60}}
    first = await post(http, body)
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "scheduled"
    again = await post(http, {**body, "payload": 2})
    assert again.status_code == 200, again.text
    assert (again.json()["id"], again.json()["payload"]) == (first.json()["id"], 2)
    assert again.headers["location"] == f"/tasks/{first.json()['id']}"
    throttle = {"key": "t", "mode": "throttle", "window": 1}
    throttled = {"type": "echo", "delay": 60, "dedupe": throttle}
    batch = await http.post("/tasks/batch", json={"tasks": [throttled, throttled]})
    assert batch.status_code == 201, batch.text
    ids = [t["id"] for t in batch.json()["tasks"]]
    assert ids[0] == ids[1]


async def test_a_refusal_is_a_deduplicated_event_on_the_socket(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    body = {"type": "echo", "delay": 60, "dedupe": {"key": "ws", "mode": "until_started"}}
    kept = (await post(http, body)).json()["id"]
    refused = await post(http, body)
    assert refused.status_code == 200
    url = f"{live.ws_url}/events?task_id={kept}&last_event_id=0-0"
    async with connect(url, additional_headers=AUTH) as ws:
        messages = [orjson.loads(await ws.recv()) for _ in range(2)]
    assert [m["event"] for m in messages] == ["scheduled", "deduplicated"]
    event = messages[1]
    assert (event["task_id"], event["status"], event["attempt"]) == (kept, "scheduled", 0)
    assert event["dedupe"]["mode"] == "until_started"
    assert event["dedupe"]["refused_id"] not in (kept, "")


@pytest.mark.parametrize(
    ("dedupe", "field", "words"),
    [
        ({"key": "k", "mode": "sometimes"}, "body.dedupe.mode", "until_started"),
        ({"key": "k", "mode": "throttle"}, "body.dedupe.window", "needs a window"),
        ({"key": "k", "mode": "debounce", "window": 0}, "body.dedupe.window", "greater than"),
        ({"key": "k", "mode": "until_finished", "window": 5}, "body.dedupe.window", "no window"),
        ({"key": "", "mode": "until_started"}, "body.dedupe.key", "at least 1"),
        ({"key": "k" * 257, "mode": "until_started"}, "body.dedupe.key", "at most 256"),
        ({"mode": "until_started"}, "body.dedupe.key", "Field required"),
        ({"key": "k", "mode": "throttle", "window": 1, "x": 1}, "body.dedupe.x", "Extra"),
        ({"key": "k", "mode": "debounce", "window": 1}, "body.dedupe", "no delay"),
    ],
)
async def test_an_invalid_dedupe_is_422_and_named(
    http: httpx.AsyncClient, dedupe: dict[str, Any], field: str, words: str
) -> None:
    response = await post(http, {"type": "echo", "delay": 5, "dedupe": dedupe})
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == [field]
    assert words in errors[0]["message"]
