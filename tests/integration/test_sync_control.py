"""SyncClient's workflows, schedules and queues against a real Redis: the async client's
control objects, blocking, from code that has no event loop (a worker process runs the
tasks)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from arqd.core.errors import (
    InvalidSchedule,
    InvalidTask,
    InvalidTransition,
    ScheduleNotFound,
    WorkflowNotFound,
)
from arqd.core.schedules import Schedule
from arqd.core.settings import Settings
from arqd.core.task import NewTask, Task, TaskStatus
from arqd.core.workflows import WorkflowState, chain
from arqd.sync import SyncClient
from conftest import WorkerProcess

T = TypeVar("T")


@pytest.fixture
def sync_client(settings: Settings) -> Iterator[SyncClient]:
    with SyncClient(settings) as client:
        yield client


def until(check: Callable[[], T | None], timeout: float = 20) -> T:
    """Call ``check`` until it returns something other than None or False."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None and value is not False:
            return value
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def ended(sync: SyncClient, task_id: str) -> Task:
    """The task once it has finished (it may not exist yet: a member not yet enqueued)."""
    until(lambda: sync.get(task_id))
    return sync.wait(task_id, timeout=20)


def in_status(sync: SyncClient, workflow_id: str, status: str) -> WorkflowState:
    def reached() -> WorkflowState | None:
        state = sync.workflows.get(workflow_id)
        return state if state.status == status else None

    return until(reached)


@pytest.mark.topologies
def test_a_retried_member_reopens_its_group_and_the_callback_runs_once(
    sync_client: SyncClient, settings: Settings, workers: list[WorkerProcess]
) -> None:
    workers.append(WorkerProcess(settings, "workflow_tasks"))
    state = sync_client.workflows.group(
        [NewTask("square", 3), NewTask("flaky", 5)],
        on_failure="fail",
        callback=NewTask("collect"),
    )
    assert [[m.status for m in s.members] for s in state.steps] == [
        ["queued", "queued"], ["pending"]
    ]  # fmt: skip
    member, callback = state.steps[0].members[1].id, state.steps[1].members[0].id
    failed = in_status(sync_client, state.id, "failed")
    assert [m.status for m in failed.steps[0].members] == ["succeeded", "failed"]
    assert sync_client.get(callback) is None

    retried = sync_client.workflows.retry(member)

    assert (retried.id, retried.status) == (member, TaskStatus.QUEUED)
    done = ended(sync_client, callback)
    assert (done.status, done.result) == (TaskStatus.SUCCEEDED, [9, 5])
    after = in_status(sync_client, state.id, "succeeded")
    assert [m.status for s in after.steps for m in s.members] == ["succeeded"] * 3


def test_a_chain_is_read_and_cancelled(sync_client: SyncClient) -> None:
    state = sync_client.workflows.chain(NewTask("collect", [1]), NewTask("collect"), queue="q2")
    assert (state.queue, state.status, state.step) == ("q2", "running", 0)
    assert sync_client.workflows.get(state.id, queue="q2") == state

    cancelled = sync_client.workflows.cancel(state.id)

    assert cancelled.status == "cancelled"
    assert [m.status for s in cancelled.steps for m in s.members] == ["cancelled", "pending"]
    with pytest.raises(InvalidTransition, match="already ended"):
        sync_client.workflows.cancel(state.id)
    with pytest.raises(WorkflowNotFound):
        sync_client.workflows.get("no-such-workflow")


def test_starting_the_same_workflow_id_twice_starts_it_once(sync_client: SyncClient) -> None:
    flow = chain(NewTask("collect", [1]), NewTask("collect"))
    first = sync_client.workflows.start(flow, workflow_id="nightly-42")
    again = sync_client.workflows.start(flow, workflow_id="nightly-42")
    assert first.id == again.id == "nightly-42"
    assert [s.queued for s in sync_client.stats("default")] == [1]
    with pytest.raises(InvalidTask, match="100 characters"):
        sync_client.workflows.start(flow, workflow_id="w" * 101)


def test_schedules_are_managed_blocking(sync_client: SyncClient) -> None:
    schedules = sync_client.schedules
    made = schedules.upsert(Schedule("hourly", "report", every=3600, payload={"n": 1}))
    assert (made.schedule.queue, made.paused, made.next_run is not None) == ("default", False, True)
    assert [s.schedule.name for s in schedules.list()] == ["hourly"]

    changed = schedules.update("hourly", every=60)
    paused = schedules.pause("hourly", "vendor outage")
    resumed = schedules.resume("hourly")
    task = schedules.trigger("hourly")

    assert changed.schedule.every == 60
    assert (paused.paused, paused.reason, paused.next_run) == (True, "vendor outage", None)
    assert (resumed.paused, resumed.next_run is not None) == (False, True)
    assert (task.type, task.payload, task.status) == ("report", {"n": 1}, TaskStatus.QUEUED)
    assert task.id.startswith("s:hourly:now:")
    with pytest.raises(InvalidSchedule, match="time zone"):
        schedules.update("hourly", tz="Mars/Olympus")
    schedules.delete("hourly")
    assert schedules.list() == []
    with pytest.raises(ScheduleNotFound):
        schedules.get("hourly")


def test_queues_are_paused_and_resumed_blocking(sync_client: SyncClient) -> None:
    queues = sync_client.queues
    whole = queues.pause("mail", reason="migration", by="ops")
    typed = queues.pause("mail", task_type="send", reason="vendor down")

    assert (whole.queue, whole.paused, whole.whole and whole.whole.reason) == (
        "mail", True, "migration"
    )  # fmt: skip
    assert [(p.task_type, p.reason) for p in typed.types] == [("send", "vendor down")]
    assert queues.paused("mail") == typed
    resumed = queues.resume("mail")
    assert (resumed.paused, len(resumed.types)) == (False, 1)
    (state,) = queues.states(["mail"])
    assert state == resumed
    with pytest.raises(InvalidTask, match="queue"):
        queues.pause("no spaces")
