"""Bad input gets a problem+json answer with the right status, and nothing reaches Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from arqd.api import create_app
from conftest import RedisServer
from e2e.live import AUTH, LiveServer, finished, settings_for

BODY_LIMIT = 4096
PAYLOAD_LIMIT = 1024


@pytest.fixture
def small_limits(redis_server: RedisServer) -> Iterator[LiveServer]:
    settings = settings_for(
        redis_server.url, max_body_bytes=BODY_LIMIT, max_payload_bytes=PAYLOAD_LIMIT
    )
    server = LiveServer(create_app(settings, with_worker=True))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def api(small_limits: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=small_limits.url, headers=AUTH) as client:
        yield client


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= set(body)
    return body


async def nothing_in(api: httpx.AsyncClient, queue: str) -> bool:
    listed = (await api.get("/queues")).json()["queues"]
    return all(q["queue"] != queue for q in listed)


async def test_a_declared_body_over_the_limit_is_413(api: httpx.AsyncClient) -> None:
    body = {"type": "echo", "queue": "big", "payload": "x" * BODY_LIMIT}
    found = problem(await api.post("/tasks", json=body), 413)
    assert str(BODY_LIMIT) in found["detail"]
    assert await nothing_in(api, "big")


async def test_a_streamed_body_over_the_limit_is_413(api: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"type": "echo", "queue": "big", "payload": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    headers = {"Content-Type": "application/json"}
    response = await api.post("/tasks", content=chunks(), headers=headers)
    assert "content-length" not in response.request.headers
    problem(response, 413)
    assert await nothing_in(api, "big")


async def test_a_payload_over_its_own_limit_is_413(api: httpx.AsyncClient) -> None:
    body = {"type": "echo", "queue": "big", "payload": "x" * (PAYLOAD_LIMIT + 1)}
    found = problem(await api.post("/tasks", json=body), 413)
    assert "ARQD_MAX_PAYLOAD_BYTES" in found["detail"]
    assert await nothing_in(api, "big")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_a_body_not_declared_as_json_is_415(
    api: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await api.post("/tasks", content=b'{"type": "echo"}', headers=headers)
    assert "Content-Type" in problem(response, 415)["detail"]


async def test_a_body_that_is_not_json_is_400(api: httpx.AsyncClient) -> None:
    headers = {"Content-Type": "application/json"}
    response = await api.post("/tasks", content=b'{"type": "echo",', headers=headers)
    problem(response, 400)


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"type": "no spaces allowed"}, "body.type", "invalid task type"),
        ({"payload": 1}, "body.type", "Field required"),
        ({"type": "echo", "nope": 1}, "body.nope", "Extra inputs"),
        ({"type": "echo", "priority": "high"}, "body.priority", "integer"),
        ({"type": "echo", "priority": 10**7}, "body.priority", "less than"),
        ({"type": "echo", "delay": -1}, "body.delay", "greater than"),
        ({"type": "echo", "queue": "a/b"}, "body.queue", "invalid queue name"),
        ({"type": "echo\n"}, "body.type", "invalid task type"),
        ({"type": "echo", "queue": "default\n"}, "body.queue", "invalid queue name"),
        ({"type": "echo", "max_retries": 1.5}, "body.max_retries", "integer"),
        ({"type": "echo", "idempotency_key": ""}, "body.idempotency_key", "at least 1"),
        ([1, 2], "body", "dictionary"),
    ],
)
async def test_an_invalid_field_is_422_and_named(
    api: httpx.AsyncClient, body: Any, field: str, words: str
) -> None:
    found = problem(await api.post("/tasks", json=body), 422)
    assert [e["field"] for e in found["errors"]] == [field]
    assert words in found["errors"][0]["message"]


async def test_a_batch_with_one_bad_task_writes_none(api: httpx.AsyncClient) -> None:
    tasks = [{"type": "echo", "queue": "batchq"}, {"type": "echo", "queue": "batchq"}]
    tasks.append({"type": "echo", "queue": "batchq", "delay": "soon"})
    found = problem(await api.post("/tasks/batch", json={"tasks": tasks}), 422)
    assert [e["field"] for e in found["errors"]] == ["body.tasks.2.delay"]
    assert await nothing_in(api, "batchq")


async def test_a_batch_with_a_trailing_newline_in_a_name_writes_none(
    api: httpx.AsyncClient,
) -> None:
    tasks = [{"type": "echo", "queue": "batchq"}, {"type": "echo", "queue": "batchq\n"}]
    found = problem(await api.post("/tasks/batch", json={"tasks": tasks}), 422)
    assert [e["field"] for e in found["errors"]] == ["body.tasks.1.queue"]
    assert await nothing_in(api, "batchq")
    assert await nothing_in(api, "batchq\n")


async def test_a_batch_with_one_payload_too_large_writes_none(api: httpx.AsyncClient) -> None:
    tasks: list[dict[str, Any]] = [{"type": "echo", "queue": "batchq", "payload": 1}]
    tasks.append({"type": "echo", "queue": "batchq", "payload": "x" * (PAYLOAD_LIMIT + 1)})
    problem(await api.post("/tasks/batch", json={"tasks": tasks}), 413)
    assert await nothing_in(api, "batchq")


@pytest.mark.parametrize(("count", "words"), [(0, "at least 1"), (1001, "at most 1000")])
async def test_a_batch_of_no_tasks_or_too_many_is_422(
    http: httpx.AsyncClient, count: int, words: str
) -> None:
    body = {"tasks": [{"type": "echo", "queue": "batchq"}] * count}
    found = problem(await http.post("/tasks/batch", json=body), 422)
    assert [e["field"] for e in found["errors"]] == ["body.tasks"]
    assert words in found["errors"][0]["message"]
    assert await nothing_in(http, "batchq")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/tasks/missing"), ("DELETE", "/tasks/missing"), ("POST", "/tasks/missing/retry")],
)
async def test_an_unknown_task_is_404(api: httpx.AsyncClient, method: str, path: str) -> None:
    found = problem(await api.request(method, path), 404)
    assert "missing" in found["detail"]


async def test_retrying_or_cancelling_a_task_that_succeeded_is_409(
    api: httpx.AsyncClient,
) -> None:
    task = (await api.post("/tasks", json={"type": "echo"})).json()
    await finished(api, task["id"])
    retried = problem(await api.post(f"/tasks/{task['id']}/retry"), 409)
    assert "only failed or cancelled" in retried["detail"]
    assert "already finished" in problem(await api.delete(f"/tasks/{task['id']}"), 409)["detail"]


@pytest.mark.parametrize(
    "query",
    [
        "status=lost",
        "limit=0",
        "limit=1001",
        "cursor=not-a-cursor",
        "queue=a/b",
        "type=a b",
        "queue=default%0A",
        "type=echo%0A",
    ],
)
async def test_bad_list_filters_are_422(api: httpx.AsyncClient, query: str) -> None:
    problem(await api.get(f"/tasks?{query}"), 422)


async def test_a_wrong_method_is_a_405_problem(api: httpx.AsyncClient) -> None:
    response = await api.put("/tasks")
    problem(response, 405)
    assert "POST" in response.headers["allow"]
