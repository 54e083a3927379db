"""A 500-member group on three worker processes, one of them SIGKILLed every 2 s (and
started again): the callback is enqueued exactly once and gets all 500 results, in
order. Members whose worker died are reclaimed when their lease lapses. The same with the
members on another queue than the workflow's: relays cut short by a kill are redone."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter

import pytest

from arqd.client import Client
from arqd.core.settings import Settings
from arqd.core.task import NewTask, TaskStatus
from conftest import WorkerProcess


@pytest.mark.parametrize("members_on", [None, "elsewhere"])
async def test_a_group_survives_workers_killed_every_two_seconds(
    client: Client, settings: Settings, workers: list[WorkerProcess], members_on: str | None
) -> None:
    # Retries to spare: on a loaded machine late heartbeats let leases lapse too, and a
    # member reclaimed past its retries fails the group, which is not what this tests.
    members = [NewTask("square", i, queue=members_on, max_retries=20) for i in range(500)]
    state = await client.workflows.group(members, on_failure="fail", callback=NewTask("collect"))
    callback_id = state.steps[1].members[0].id
    queues = ["default", *([members_on] if members_on else [])]

    def worker() -> WorkerProcess:
        return WorkerProcess(settings, "workflow_tasks", queues=queues)

    live = [worker() for _ in range(3)]
    workers.extend(live)
    kills, deadline = 0, time.monotonic() + 90
    while time.monotonic() < deadline:
        task = await client.get(callback_id)
        if task is not None and task.status is TaskStatus.SUCCEEDED:
            break
        await asyncio.sleep(2)
        victim = live[kills % 3]
        victim.signal(signal.SIGKILL)
        victim.wait()
        live[kills % 3] = worker()
        workers.append(live[kills % 3])
        kills += 1
    if await client.get(callback_id) is None:  # say how the workflow stands
        stands = await client.workflows.get(state.id)
        counts = Counter(m.status for m in stands.steps[0].members)
        raise AssertionError(f"no callback: workflow {stands.status}, members {dict(counts)}")
    done = await client.wait(callback_id, timeout=30)
    assert done.result == [i * i for i in range(500)]
    assert kills >= 4, "the workers were not killed while the group ran"
    after = await client.workflows.get(state.id)
    assert after.status == "succeeded"
    assert after.error_callbacks == []
    events = await client.store.events.read_after({"default": "0-0"}, 1, count=100_000)
    queued = [e for e in events if e.fields[b"task"] == callback_id.encode()]
    assert [e.fields[b"event"] for e in queued].count(b"queued") == 1
    if members_on:
        events += await client.store.events.read_after({members_on: "0-0"}, 1, count=100_000)
    reclaimed = [e for e in events if e.fields[b"event"] == b"lease_expired"]
    print(f"{kills} workers killed, {len(reclaimed)} members reclaimed")
