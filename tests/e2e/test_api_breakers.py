"""Circuit breakers over HTTP: listed with their state, reset by hand."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from arqd.store.store import Store


async def test_an_open_breaker_is_listed_and_a_reset_closes_it(
    http: httpx.AsyncClient, store: Store
) -> None:
    assert (await http.get("/breakers")).json() == {"breakers": []}
    for _ in range(2):
        await store.limits.breaker("payments", "fail", threshold=2, open_ms=60_000)

    (listed,) = (await http.get("/breakers")).json()["breakers"]
    assert listed["name"] == "payments"
    assert (listed["state"], listed["state_value"], listed["failures"]) == ("open", 1, 2)
    assert listed["open_until"].endswith("Z")
    assert listed["trial_running"] is False
    assert (await store.limits.breaker("payments", "allow")).allowed is False

    reset = await http.post("/breakers/payments/reset")
    assert reset.status_code == 200, reset.text
    assert (reset.json()["state"], reset.json()["state_value"]) == ("closed", 0)
    assert reset.json()["open_until"] is None
    assert (await store.limits.breaker("payments", "allow")).allowed is True
    (after,) = (await http.get("/breakers")).json()["breakers"]
    assert (after["state"], after["failures"]) == ("closed", 0)
    entries: Any = await store.redis.xrange(store.keys.breaker_events())
    events = [fields[b"event"] for _, fields in entries]
    assert events == [b"breaker_opened", b"breaker_reset"]


async def test_a_task_type_breaker_is_named_task_queue_type(
    http: httpx.AsyncClient, store: Store
) -> None:
    assert (await http.post("/tasks", json={"type": "echo"})).status_code == 201
    await store.limits.reset_type_breaker("default", "echo")  # a record, as after a failure
    names = [b["name"] for b in (await http.get("/breakers")).json()["breakers"]]
    assert names == ["task:default:echo"]
    reset = await http.post("/breakers/task:default:echo/reset")
    assert reset.status_code == 200, reset.text
    assert reset.json()["name"] == "task:default:echo"


@pytest.mark.parametrize("name", ["nothing-here", "task:default:echo", "task:nope:x"])
async def test_an_unknown_breaker_is_a_404_problem(http: httpx.AsyncClient, name: str) -> None:
    response = await http.post(f"/breakers/{name}/reset")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:arqd:problem:breaker-not-found"
    assert name in response.json()["detail"]


@pytest.mark.parametrize("name", ["9starts-with-a-digit", "has space", "x" * 200, "task:a{b}:c"])
async def test_a_malformed_name_is_a_422_problem(http: httpx.AsyncClient, name: str) -> None:
    response = await http.post(f"/breakers/{name}/reset")
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "path.name"
