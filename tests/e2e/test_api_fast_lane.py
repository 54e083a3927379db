"""The enqueue fast lane answers exactly as the FastAPI routes it stands in for.

Two apps on one Redis, under key prefixes of their own, one with the lane and one
without (``create_app(fast_lane=False)``), get the same requests: every status, header
(but ``Date``) and body must match. Task ids and creation times are each app's own, so
they are checked for shape and then set aside; everything else is compared as sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from arqd.api import create_app
from conftest import RedisServer
from e2e.live import AUTH, LiveServer, settings_for
from topologies import free_port

JSON = {"Content-Type": "application/json"}
LARGE = "x" * 70_000  # over the 64 KiB body limit of these apps
ID = re.compile(r"^[A-Za-z0-9_-]{16}$")
TIMES = ("created_at", "scheduled_at")

# (path, body, headers): valid, invalid and edge cases of both routes, every error class.
CASES: list[tuple[str, bytes, dict[str, str]]] = [
    ("/tasks", b'{"type": "echo"}', JSON),
    ("/tasks", b'{"type": "echo", "payload": {"a": [1, 2.5, null, true, "\\u00e9"]}}', JSON),
    ("/tasks", b'{"type": "echo", "payload": 0}', JSON),
    ("/tasks", b'{"type": "echo", "queue": "other", "priority": 7}', JSON),
    ("/tasks", b'{"type": "echo", "priority": -1000000}', JSON),
    ("/tasks", b'{"type": "echo", "delay": 30}', JSON),
    ("/tasks", b'{"type": "echo", "delay": 0}', JSON),
    ("/tasks", b'{"type": "echo", "max_retries": 0, "timeout": 0.5}', JSON),
    ("/tasks", b'{"type": "echo", "idempotency_key": "k-1"}', JSON),
    ("/tasks", b'{"type": "echo", "idempotency_key": "k-1"}', JSON),  # the repeat: 200
    ("/tasks", b'{"type": "echo", "dedupe": {"key": "d", "mode": "throttle", "window": 60}}', JSON),
    ("/tasks", b'{"type": "echo", "dedupe": {"key": "d", "mode": "throttle", "window": 60}}', JSON),
    (
        "/tasks",
        b'{"type": "echo", "dedupe": {"key": "d", "mode": "until_started", "window": 1}}',
        JSON,
    ),
    ("/tasks", b'{"type": "echo", "dedupe": {"key": "d", "mode": "never"}}', JSON),
    ("/tasks", b'{"type": "echo"}', {"Content-Type": "application/vnd.api+json"}),
    ("/tasks", b'{"type": "echo"}', {"Content-Type": "application/json; charset=utf-8"}),
    ("/tasks", b'{"type": "echo"}', {"Content-Type": "text/plain"}),  # 415
    ("/tasks", b'{"type": "echo"}', {}),  # no content type: 415
    ("/tasks", b'{"type": "echo"', JSON),  # malformed JSON
    ("/tasks", b"", JSON),
    ("/tasks", b"[]", JSON),
    ("/tasks", b"null", JSON),
    ("/tasks", b"{}", JSON),  # type missing
    ("/tasks", b'{"type": "9bad"}', JSON),
    ("/tasks", b'{"type": "echo", "queue": "no spaces"}', JSON),
    ("/tasks", b'{"type": "echo", "priority": 1.5}', JSON),
    ("/tasks", b'{"type": "echo", "priority": 2000000}', JSON),
    ("/tasks", b'{"type": "echo", "delay": -1}', JSON),
    ("/tasks", b'{"type": "echo", "timeout": 0}', JSON),
    ("/tasks", b'{"type": "echo", "extra": 1}', JSON),
    ("/tasks", b'{"type": "echo", "idempotency_key": ""}', JSON),
    ("/tasks", b'{"type": "echo", "payload": "' + LARGE.encode() + b'"}', JSON),  # 413
    ("/tasks/batch", b'{"tasks": [{"type": "echo"}, {"type": "echo", "queue": "q2"}]}', JSON),
    ("/tasks/batch", b'{"tasks": [{"type": "echo", "idempotency_key": "k-2"}]}', JSON),
    ("/tasks/batch", b'{"tasks": [{"type": "echo", "idempotency_key": "k-2"}]}', JSON),
    ("/tasks/batch", b'{"tasks": []}', JSON),
    ("/tasks/batch", b'{"tasks": [{"type": "echo"}, {"type": ""}]}', JSON),
    ("/tasks/batch", b'{"tasks": {"type": "echo"}}', JSON),
    ("/tasks/batch", b'{"tasks": [{"type": "echo"}]}', {"Content-Type": "text/csv"}),
    ("/tasks/batch", b"not json", JSON),
]


@pytest.fixture
def pair(redis_server: RedisServer) -> Iterator[tuple[LiveServer, LiveServer]]:
    """The same app with and without the lane, on one Redis."""
    yield from _pair(redis_server.url)


@pytest.fixture
def pair_without_redis() -> Iterator[tuple[LiveServer, LiveServer]]:
    """The same pair, with nothing listening where Redis should be: every valid enqueue is
    503 (with no rate limit, which would answer 503 before any route)."""
    yield from _pair(f"redis://127.0.0.1:{free_port()}/0", requests_per_minute=0)


def _pair(url: str, **overrides: Any) -> Iterator[tuple[LiveServer, LiveServer]]:
    servers = [
        LiveServer(
            create_app(settings_for(url, max_body_bytes=65_536, **overrides), fast_lane=lane)
        )
        for lane in (True, False)
    ]
    for server in servers:
        server.start()
    yield servers[0], servers[1]
    for server in servers:
        server.stop()


def _set_aside(response: httpx.Response) -> tuple[int, dict[str, str], Any]:
    """Status, headers and body, with what differs by app checked and set aside."""
    headers = {k: v for k, v in response.headers.items() if k != "date"}
    if not response.content:
        return response.status_code, headers, None
    body = orjson.loads(response.content)
    for task in body.get("tasks", [body]) if isinstance(body, dict) else []:
        if isinstance(task, dict) and "id" in task:
            assert ID.match(task["id"])
            task["id"] = "<id>"
            for name in TIMES:
                if task.get(name) is not None:
                    task[name] = "<time>"
    if "location" in headers:
        assert headers["location"] == f"/tasks/{orjson.loads(response.content)['id']}"
        headers["location"] = "/tasks/<id>"
    if "content-length" in headers:
        headers["content-length"] = "<length>"  # ids are the same length; times may not be
    return response.status_code, headers, body


async def _compare(lane: LiveServer, plain: LiveServer) -> list[int]:
    statuses = []
    async with httpx.AsyncClient(headers=AUTH, timeout=10) as http:
        for path, body, headers in CASES:
            answers = [
                _set_aside(await http.post(f"{server.url}{path}", content=body, headers=headers))
                for server in (lane, plain)
            ]
            assert answers[0] == answers[1], (path, body[:80], headers)
            statuses.append(answers[0][0])
    return statuses


async def test_the_lane_answers_as_the_routes_do(pair: tuple[LiveServer, LiveServer]) -> None:
    statuses = await _compare(*pair)
    assert len(CASES) >= 30
    # Every class of answer was compared, not only successes.
    assert {200, 201, 400, 413, 415, 422} <= set(statuses)


async def test_the_lane_answers_as_the_routes_do_without_redis(
    pair_without_redis: tuple[LiveServer, LiveServer],
) -> None:
    statuses = await _compare(*pair_without_redis)
    assert 503 in statuses
    assert {400, 413, 415, 422} <= set(statuses)
