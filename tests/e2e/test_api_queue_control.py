"""Queue control and task deadlines over HTTP: POST /queues/{queue}/pause and /resume,
what GET /queues shows of them, and ``expires_in`` / ``expire_at`` on POST /tasks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from e2e.live import LiveServer


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


async def queue_row(http: httpx.AsyncClient, name: str) -> dict[str, Any]:
    rows = (await http.get("/queues")).json()["queues"]
    return next(row for row in rows if row["queue"] == name)


async def test_pause_and_resume_a_queue_and_a_type(http: httpx.AsyncClient) -> None:
    assert (await http.post("/tasks", json={"type": "echo", "queue": "mail"})).status_code == 201
    row = await queue_row(http, "mail")
    assert (row["paused"], row["paused_types"], row["expired"]) == (False, [], 0)

    paused = await http.post("/queues/mail/pause", json={"reason": "provider outage"})
    assert paused.status_code == 200, paused.text
    body = paused.json()
    assert (body["queue"], body["paused"], body["reason"]) == ("mail", True, "provider outage")
    assert body["paused_by"].startswith("key:")
    assert body["paused_at"].endswith("Z")
    row = await queue_row(http, "mail")
    assert (row["paused"], row["reason"]) == (True, "provider outage")

    typed = await http.post("/queues/mail/pause", json={"type": "echo", "reason": "bounce"})
    assert typed.status_code == 200, typed.text
    (only,) = typed.json()["paused_types"]
    assert (only["type"], only["reason"]) == ("echo", "bounce")
    assert (await queue_row(http, "mail"))["held"]["paused"] == 0  # none taken yet

    resumed = await http.post("/queues/mail/resume")  # no body: the whole queue
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["paused"] is False
    assert [t["type"] for t in resumed.json()["paused_types"]] == ["echo"]
    again = await http.post("/queues/mail/resume", json={"type": "echo"})
    assert again.json()["paused_types"] == []


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/queues/no%20spaces/pause", {}, "path.queue"),
        ("/queues/mail/pause", {"type": "9lives"}, "body.type"),
        ("/queues/mail/resume", {"type": "*"}, "body.type"),
        ("/queues/mail/pause", {"reason": "x" * 501}, "body.reason"),
        ("/queues/mail/pause", {"why": "typo"}, "body.why"),
        ("/queues/mail/pause", {"reason": 5}, "body.reason"),
    ],
)
async def test_bad_pause_requests_are_422_naming_the_field(
    http: httpx.AsyncClient, path: str, body: dict[str, Any], field: str
) -> None:
    found = problem(await http.post(path, json=body), 422)
    assert field in [error["field"] for error in found["errors"]]


async def test_pausing_needs_a_key(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.url) as anonymous:
        problem(await anonymous.post("/queues/mail/pause"), 401)


async def test_a_task_shows_its_deadline(http: httpx.AsyncClient) -> None:
    made = await http.post("/tasks", json={"type": "echo", "delay": 30, "expires_in": 60})
    assert made.status_code == 201, made.text
    task = made.json()
    created = datetime.fromisoformat(task["created_at"])
    assert datetime.fromisoformat(task["expires_at"]) == created + timedelta(seconds=60)
    got = (await http.get(f"/tasks/{task['id']}")).json()
    assert got["expires_at"] == task["expires_at"]
    at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    made = await http.post("/tasks", json={"type": "echo", "delay": 30, "expire_at": at})
    assert made.status_code == 201, made.text


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"expire_at": "2020-01-01T00:00:00Z"}, "body.expire_at", "expire_at has passed"),
        ({"expire_at": "2099-01-01T00:00:00"}, "body.expire_at", "timezone"),
        ({"expires_in": 0}, "body.expires_in", "greater than 0"),
        ({"expires_in": 1, "delay": 5}, None, "longer than the delay"),
    ],
)
async def test_a_deadline_that_cannot_be_met_is_refused(
    http: httpx.AsyncClient, extra: dict[str, Any], field: str | None, message: str
) -> None:
    found = problem(await http.post("/tasks", json={"type": "echo", **extra}), 422)
    if field is None:
        assert message in found["detail"]
    else:
        (error,) = found["errors"]
        assert error["field"] == field
        assert message in error["message"]
