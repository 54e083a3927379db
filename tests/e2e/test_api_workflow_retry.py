"""A workflow member that failed, retried over HTTP (``POST /tasks/{id}/retry``): the
workflow that failed on it runs again, and its callback then runs once, with every
member's result."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from arqd.api import create_app
from arqd.core.settings import Settings
from arqd.store.store import Store
from conftest import task_events
from e2e.flaky_tasks import flaky_registry
from e2e.live import AUTH, LiveServer, finished
from e2e.test_api_workflows import until_status


@pytest.fixture
def flaky_live(api_settings: Settings) -> Iterator[LiveServer]:
    """The API with an in-process worker of ``echo`` and ``flaky``."""
    server = LiveServer(create_app(api_settings, registry=flaky_registry(), with_worker=True))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def flaky_http(flaky_live: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=flaky_live.url, headers=AUTH, timeout=10) as client:
        yield client


@pytest.mark.topologies
async def test_retrying_a_failed_member_over_http_reopens_the_workflow(
    flaky_http: httpx.AsyncClient, store: Store
) -> None:
    http = flaky_http
    body = {
        "steps": [
            {"group": [{"type": "echo", "payload": 1}, {"type": "flaky", "payload": 2}],
             "on_failure": "fail"},
            {"task": {"type": "echo"}},
        ]
    }  # fmt: skip
    made = await http.post("/workflows", json=body)
    assert made.status_code == 201, made.text
    workflow_id = made.json()["id"]
    member = made.json()["steps"][0]["members"][1]["id"]
    callback = made.json()["steps"][1]["members"][0]["id"]
    failed = await until_status(http, workflow_id, "failed")
    assert [m["status"] for m in failed["steps"][0]["members"]] == ["succeeded", "failed"]
    assert failed["steps"][1]["members"][0]["status"] == "pending"
    assert (await http.get(f"/tasks/{callback}")).status_code == 404

    retried = await http.post(f"/tasks/{member}/retry")

    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "queued"
    done = await until_status(http, workflow_id, "succeeded")
    assert {m["status"] for s in done["steps"] for m in s["members"]} == {"succeeded"}
    ran = await finished(http, callback, timeout=15)
    assert (ran["status"], ran["result"]) == ("succeeded", [1, 2])
    assert (await task_events(store, "default", callback)).count("queued") == 1
    again = await http.post(f"/tasks/{member}/retry")
    assert again.status_code == 409  # it succeeded: nothing to retry
