"""Task routes over real HTTP: idempotency, batches, listing, cancel, retry, queues, workers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from arqd.api import create_app
from conftest import RedisServer
from e2e.live import AUTH, LiveServer, finished, settings_for, wait_until


async def enqueue(http: httpx.AsyncClient, body: dict[str, Any], status: int = 201) -> Any:
    response = await http.post("/tasks", json=body)
    assert response.status_code == status, response.text
    return response.json()


async def test_a_repeated_idempotency_key_returns_the_first_task_with_200(
    http: httpx.AsyncClient,
) -> None:
    body = {"type": "echo", "payload": 1, "idempotency_key": "order-42", "delay": 60}
    first = await enqueue(http, body)
    again = await http.post("/tasks", json={**body, "payload": 2})
    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    assert again.json()["payload"] == 1
    assert again.headers["location"] == f"/tasks/{first['id']}"


async def test_a_batch_is_enqueued_in_order_and_runs(http: httpx.AsyncClient) -> None:
    tasks = [{"type": "echo", "payload": n} for n in range(50)]
    tasks.append({"type": "echo", "queue": "elsewhere", "priority": 3})
    response = await http.post("/tasks/batch", json={"tasks": tasks})
    assert response.status_code == 201
    created = response.json()["tasks"]
    assert [t["payload"] for t in created[:50]] == list(range(50))
    assert (created[50]["queue"], created[50]["priority"]) == ("elsewhere", 3)
    assert len({t["id"] for t in created}) == 51
    done = await finished(http, created[49]["id"])
    assert done["result"] == 49


async def test_listing_filters_and_pages_with_a_cursor(http: httpx.AsyncClient) -> None:
    ids = {(await enqueue(http, {"type": "echo", "queue": "listed", "delay": 60}))["id"]}
    for _ in range(6):
        ids.add((await enqueue(http, {"type": "sleep", "queue": "listed", "delay": 60}))["id"])
    await enqueue(http, {"type": "echo", "queue": "other", "delay": 60})

    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"queue": "listed", "status": "scheduled", "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await http.get("/tasks", params=params)).json()
        seen += page["tasks"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert {t["id"] for t in seen} == ids
    assert all(t["queue"] == "listed" and t["status"] == "scheduled" for t in seen)

    sleeps = (await http.get("/tasks", params={"queue": "listed", "type": "sleep"})).json()
    assert len(sleeps["tasks"]) == 6
    assert {t["type"] for t in sleeps["tasks"]} == {"sleep"}


async def test_cancel_a_waiting_task_at_once_and_a_running_one_by_request(
    http: httpx.AsyncClient,
) -> None:
    waiting = await enqueue(http, {"type": "echo", "delay": 60})
    response = await http.delete(f"/tasks/{waiting['id']}")
    assert (response.status_code, response.json()["status"]) == (200, "cancelled")

    running = await enqueue(http, {"type": "sleep", "payload": {"seconds": 30}})

    async def active() -> bool:
        task = (await http.get(f"/tasks/{running['id']}")).json()
        return bool(task["status"] == "active")

    await wait_until(active)
    response = await http.delete(f"/tasks/{running['id']}")
    assert response.status_code == 202
    assert response.json()["cancel_requested"] is True
    assert (await finished(http, running["id"]))["status"] == "cancelled"


async def test_retry_queues_a_failed_task_again(http: httpx.AsyncClient) -> None:
    failed = await enqueue(http, {"type": "fail", "max_retries": 0})
    done = await finished(http, failed["id"])
    assert done["status"] == "failed"
    assert done["error"]["type"] == "DemoFailure"

    response = await http.post(f"/tasks/{failed['id']}/retry", params={"queue": "default"})
    # The in-process worker may take it up (or even fail it again) before the answer is read.
    assert response.status_code == 200
    assert response.json()["status"] in {"queued", "active", "failed"}
    again = await finished(http, failed["id"])
    assert again["attempts"] == 1  # a fresh retry budget
    assert again["finished_at"] > done["finished_at"]  # it really ran again


async def test_wait_returns_once_the_task_finished_or_as_it_is_after_the_wait(
    http: httpx.AsyncClient,
) -> None:
    quick = await enqueue(http, {"type": "sleep", "payload": {"seconds": 0.3}})
    response = await http.get(f"/tasks/{quick['id']}", params={"wait": 10})
    assert response.json()["status"] == "succeeded"

    later = await enqueue(http, {"type": "echo", "delay": 60})
    response = await http.get(f"/tasks/{later['id']}", params={"wait": 0.2})
    assert response.json()["status"] == "scheduled"


async def test_queues_workers_and_health_report_the_live_system(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    await enqueue(http, {"type": "echo", "queue": "idle"})
    await enqueue(http, {"type": "echo", "queue": "idle"})
    running = await enqueue(http, {"type": "sleep", "payload": {"seconds": 30}})

    async def worker_runs_it() -> list[dict[str, Any]] | None:
        workers = (await http.get("/workers")).json()["workers"]
        return workers if workers and running["id"] in workers[0]["current_tasks"] else None

    workers = await wait_until(worker_runs_it)
    assert len(workers) == 1
    assert workers[0]["queues"] == ["default"]
    assert workers[0]["last_heartbeat"].endswith("Z")

    queues = {q["queue"]: q for q in (await http.get("/queues")).json()["queues"]}
    assert (queues["idle"]["queued"], queues["default"]["active"]) == (2, 1)
    assert queues["idle"]["oldest_queued_age_seconds"] >= 0

    health = (await http.get("/health")).json()
    assert (health["status"], health["queue_length"], health["active_consumers"]) == ("ok", 2, 1)
    assert health["timestamp"].endswith("Z")
    assert health["uptime_seconds"] > 0
    assert (await http.get("/ready")).json() == {"status": "ready"}
    await http.delete(f"/tasks/{running['id']}")


class RouteRecorder:
    """ASGI middleware outside the app, as HTTP metrics are: notes each request's route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.routes: list[str | None] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http":
            self.routes.append(getattr(scope.get("route"), "path", None))


@pytest.fixture
def recorded(redis_server: RedisServer) -> Iterator[tuple[LiveServer, RouteRecorder]]:
    app = create_app(settings_for(redis_server.url))
    recorder = RouteRecorder(app)
    server = LiveServer(app, outer=recorder)
    server.start()
    yield server, recorder
    server.stop()


async def test_middleware_outside_sees_the_route_template_of_every_request(
    recorded: tuple[LiveServer, RouteRecorder],
) -> None:
    server, recorder = recorded
    async with httpx.AsyncClient(base_url=server.url, headers=AUTH) as http:
        task = await enqueue(http, {"type": "echo"})  # answered by the fast lane
        await http.post("/tasks/batch", json={"tasks": [{"type": "echo"}]})
        await http.post("/tasks", json={"type": "no spaces"})  # refused by the FastAPI route
        await http.get(f"/tasks/{task['id']}")
    assert recorder.routes == ["/tasks", "/tasks/batch", "/tasks", "/tasks/{task_id}"]
