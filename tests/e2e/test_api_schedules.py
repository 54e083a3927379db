"""Schedules over HTTP: create (idempotent, also from three processes at once), read,
change, pause, resume, trigger and delete; each wrong request a problem naming what to
change."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from arqd.store.store import Store

NIGHTLY = {"name": "nightly", "type": "report", "cron": "30 2 * * *", "tz": "Europe/Berlin"}


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_a_schedule_is_created_read_changed_and_deleted(
    http: httpx.AsyncClient, store: Store
) -> None:
    made = await http.post("/schedules", json={**NIGHTLY, "payload": {"days": 1}})
    assert made.status_code == 200, made.text
    body = made.json()
    assert (body["name"], body["type"], body["queue"], body["tz"]) == (
        "nightly",
        "report",
        "default",
        "Europe/Berlin",
    )
    assert body["paused"] is False
    assert body["last_run"] is None
    following = instant(body["next_run"]).astimezone(ZoneInfo("Europe/Berlin"))
    assert (following.hour, following.minute) == (2, 30)
    assert [s["name"] for s in (await http.get("/schedules")).json()["schedules"]] == ["nightly"]
    assert (await http.get("/schedules/nightly")).json()["payload"] == {"days": 1}

    changed = await http.patch("/schedules/nightly", json={"every": 60})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["cron"], changed.json()["every"]) == (None, 60)
    assert changed.json()["payload"] == {"days": 1}  # what was not given stays

    assert (await http.delete("/schedules/nightly")).status_code == 204
    assert (await http.get("/schedules/nightly")).status_code == 404
    assert (await http.get("/schedules")).json() == {"schedules": []}


async def test_pause_resume_and_trigger(http: httpx.AsyncClient) -> None:
    await http.post("/schedules", json={**NIGHTLY})
    paused = await http.post("/schedules/nightly/pause", json={"reason": "migration"})
    assert paused.status_code == 200, paused.text
    assert (paused.json()["paused"], paused.json()["reason"]) == (True, "migration")
    assert paused.json()["next_run"] is None
    resumed = await http.post("/schedules/nightly/resume")
    assert resumed.json()["paused"] is False
    assert instant(resumed.json()["next_run"]) > datetime.now(UTC)

    run = await http.post("/schedules/nightly/trigger")
    assert run.status_code == 201, run.text
    assert run.json()["type"] == "report"
    assert run.json()["id"].startswith("s:nightly:now:")
    assert run.headers["location"] == f"/tasks/{run.json()['id']}"
    assert (await http.get(run.headers["location"])).status_code == 200


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({**NIGHTLY, "cron": "61 * * * *"}, "cron '61 * * * *'"),
        ({**NIGHTLY, "tz": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({**NIGHTLY, "every": 60}, "either cron or every"),
        ({"name": "x", "type": "report"}, "either cron or every"),
        ({**NIGHTLY, "name": "has space"}, "name"),
        ({**NIGHTLY, "misfire": "sometimes"}, "misfire"),
        ({**NIGHTLY, "every": None, "colour": "red"}, "colour"),
    ],
)
async def test_a_wrong_schedule_is_a_problem_that_names_it(
    http: httpx.AsyncClient, body: dict[str, object], names: str
) -> None:
    answer = await http.post("/schedules", json=body)
    assert answer.status_code == 422, answer.text
    assert names in answer.text
    assert (await http.get("/schedules")).json() == {"schedules": []}


async def test_an_unknown_schedule_is_404_for_every_route(http: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/schedules/none"),
        ("PATCH", "/schedules/none"),
        ("DELETE", "/schedules/none"),
        ("POST", "/schedules/none/pause"),
        ("POST", "/schedules/none/resume"),
        ("POST", "/schedules/none/trigger"),
    ]:
        answer = await http.request(method, path, json={} if method == "PATCH" else None)
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json()["detail"] == "no schedule named 'none'"


UPSERTS = """
import asyncio, sys
import httpx

async def main() -> None:
    async with httpx.AsyncClient(base_url=sys.argv[1], headers={"Authorization": sys.argv[2]}) as h:
        body = {"name": "race", "type": "report", "every": 5}
        answers = await asyncio.gather(*(h.post("/schedules", json=body) for _ in range(17)))
        assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
        print(sorted({a.json()["next_run"] for a in answers}))

asyncio.run(main())
"""


async def test_concurrent_upserts_from_three_processes_leave_one_next_time(
    http: httpx.AsyncClient, store: Store
) -> None:
    key = http.headers["authorization"]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            UPSERTS,
            str(http.base_url),
            key,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    outputs = [await p.communicate() for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    seen = {line for out, _ in outputs for line in out.decode().split("\n") if line}
    assert len(seen) == 1  # every answer, in every process, named the same next run
    (listed,) = (await http.get("/schedules")).json()["schedules"]
    assert seen == {str([listed["next_run"]])}
    names = await store.redis.zrange(store.keys.schedule_times("default"), 0, -1)
    assert names == [b"race"]
