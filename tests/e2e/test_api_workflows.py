"""Workflows over HTTP: a chain of groups started in one request and read with each
member's status; a group that fails runs the workflow's error task; wrong bodies are
problems naming what to change."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from arqd import demo
from arqd.store.store import Store
from arqd.worker import Worker
from conftest import eventually


async def until_status(http: httpx.AsyncClient, workflow_id: str, status: str) -> dict:  # type: ignore[type-arg]
    found: dict = {}  # type: ignore[type-arg]

    async def reached() -> bool:
        answer = await http.get(f"/workflows/{workflow_id}")
        found.update(answer.json())
        return bool(found["status"] == status)

    await eventually(reached, timeout=15)
    return found


@pytest.mark.topologies
async def test_a_chain_of_groups_over_http(http: httpx.AsyncClient) -> None:
    body = {
        "steps": [
            {"task": {"type": "echo", "payload": 3}},
            {"group": [{"type": "echo"}, {"type": "echo", "payload": 4}], "on_failure": "fail"},
            {"task": {"type": "echo"}},
        ]
    }
    made = await http.post("/workflows", json=body)
    assert made.status_code == 201, made.text
    started = made.json()
    assert made.headers["location"] == f"/workflows/{started['id']}"
    assert [len(s["members"]) for s in started["steps"]] == [1, 2, 1]
    assert started["steps"][2]["members"][0]["status"] == "pending"
    done = await until_status(http, started["id"], "succeeded")
    assert {m["status"] for s in done["steps"] for m in s["members"]} == {"succeeded"}
    last = (await http.get(f"/tasks/{done['steps'][2]['members'][0]['id']}")).json()
    assert last["result"] == [3, 4]
    again = await http.post("/workflows", json={**body, "id": started["id"]})
    assert again.status_code == 201
    assert again.json()["status"] == "succeeded"  # the same id starts nothing more


async def test_a_failed_group_runs_the_error_task(http: httpx.AsyncClient) -> None:
    body = {
        "steps": [
            {
                "group": [{"type": "echo", "payload": 1}, {"type": "fail", "max_retries": 0}],
                "on_failure": "fail",
            },
            {"task": {"type": "echo"}},
        ],
        "on_error": {"type": "echo"},
    }
    made = (await http.post("/workflows", json=body)).json()
    failed = await until_status(http, made["id"], "failed")
    (error_task,) = failed["error_callbacks"]
    assert failed["steps"][1]["members"][0]["status"] == "pending"

    async def ran() -> bool:
        task = (await http.get(f"/tasks/{error_task['id']}")).json()
        return bool(task["status"] == "succeeded")

    await eventually(ran, timeout=15)
    result = (await http.get(f"/tasks/{error_task['id']}")).json()["result"]
    assert result == {"workflow": made["id"], "step": 0, "failed": [1]}


async def test_wrong_workflows_are_problems(http: httpx.AsyncClient) -> None:
    no_policy = {"steps": [{"group": [{"type": "echo"}]}]}
    answer = await http.post("/workflows", json=no_policy)
    assert answer.status_code == 422
    assert "on_failure" in answer.text
    both = {"steps": [{"task": {"type": "echo"}, "group": [{"type": "echo"}]}]}
    assert (await http.post("/workflows", json=both)).status_code == 422
    missing = await http.get("/workflows/no-such-workflow")
    assert missing.status_code == 404
    assert missing.json()["type"].endswith("workflow-not-found")


async def test_cancel_a_workflow_over_http(http: httpx.AsyncClient) -> None:
    body = {
        "steps": [
            {"group": [{"type": "sleep", "payload": {"seconds": 30}}], "on_failure": "fail"},
            {"task": {"type": "echo"}},
        ]
    }
    made = (await http.post("/workflows", json=body)).json()
    await until_status(http, made["id"], "running")
    answer = await http.post(f"/workflows/{made['id']}/cancel")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "cancelled"
    done = await until_status(http, made["id"], "cancelled")
    assert done["steps"][1]["members"][0]["status"] == "pending"
    again = await http.post(f"/workflows/{made['id']}/cancel")
    assert again.status_code == 409


async def test_members_on_other_queues_over_http(http: httpx.AsyncClient, store: Store) -> None:
    body = {
        "steps": [
            {"task": {"type": "echo", "payload": 3, "queue": "http-other"}},
            {
                "group": [{"type": "echo", "queue": "http-other"}, {"type": "echo", "payload": 4}],
                "on_failure": "fail",
            },
            {"task": {"type": "echo"}},
        ]
    }
    made = await http.post("/workflows", json=body)
    assert made.status_code == 201, made.text
    first = made.json()["steps"][0]["members"][0]
    assert first["queue"] == "http-other"
    worker = Worker(demo.registry, store, queues=["http-other"])
    running = asyncio.create_task(worker.run(install_signals=False))
    try:
        done = await until_status(http, made.json()["id"], "succeeded")
    finally:
        worker.stop()
        await asyncio.wait_for(running, 30)
    assert [m.get("queue") for m in done["steps"][1]["members"]] == ["http-other", None]
    last = (await http.get(f"/tasks/{done['steps'][2]['members'][0]['id']}")).json()
    assert last["result"] == [3, 4]
    bad = {"steps": [{"task": {"type": "echo", "queue": "no spaces"}}]}
    assert (await http.post("/workflows", json=bad)).status_code == 422
