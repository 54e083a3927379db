"""Progress and logs over HTTP: on ``GET /tasks/{id}``, ``GET /tasks/{id}/logs``, and live
on ``WS /events`` (the demo type ``steps`` reports both)."""

from __future__ import annotations

import httpx
from websockets.asyncio.client import connect

from e2e.live import AUTH, LiveServer, events_of


async def test_progress_and_logs_over_http_and_the_event_socket(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    url = f"{live.ws_url}/events?last_event_id=0-0"
    async with connect(url, additional_headers=AUTH) as ws:
        body = {"type": "steps", "payload": {"steps": 3, "seconds": 0.2}}
        created = await http.post("/tasks", json=body)
        assert created.status_code == 201
        assert created.json()["progress"] is None
        task_id = created.json()["id"]
        events = await events_of(ws, task_id, until="succeeded")
    progress = [e["progress"] for e in events if e["event"] == "progress"]
    assert progress[-1]["value"] == 1.0
    assert progress[-1]["message"] == "step 3 of 3"
    assert {e["status"] for e in events if e["event"] in ("progress", "log")} == {"active"}
    streamed = [line["message"] for e in events if e["event"] == "log" for line in e["lines"]]
    assert streamed == ["starting 3 steps", "step 1 done", "step 2 done", "step 3 done"]

    task = (await http.get(f"/tasks/{task_id}")).json()
    assert task["progress"]["value"] == 1.0
    assert task["progress"]["attempt"] == 1
    assert task["progress"]["updated_at"].endswith("Z")
    logs = await http.get(f"/tasks/{task_id}/logs")
    assert logs.status_code == 200
    lines = logs.json()["lines"]
    assert [line["message"] for line in lines] == streamed
    assert {(line["attempt"], line["level"]) for line in lines} == {(1, "INFO")}
    assert all(line["time"].endswith("Z") for line in lines)


async def test_logs_of_an_unknown_task_are_a_404(http: httpx.AsyncClient) -> None:
    response = await http.get("/tasks/no-such-task/logs")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
