"""SyncClient's control objects keep up with the async ones: every public async method of
``WorkflowControl``, ``ScheduleControl`` and ``QueueControl`` has a blocking twin of the
same signature and docstring, which runs it on the given runner."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from arqd.client import Client
from arqd.queue_control import QueueControl
from arqd.schedule_control import ScheduleControl
from arqd.sync import SyncClient
from arqd.sync_control import (
    Blocking,
    SyncQueueControl,
    SyncScheduleControl,
    SyncWorkflowControl,
)
from arqd.workflow_control import WorkflowControl

T = TypeVar("T")
PAIRS: list[tuple[type[Any], type[Blocking[Any]]]] = [
    (WorkflowControl, SyncWorkflowControl),
    (ScheduleControl, SyncScheduleControl),
    (QueueControl, SyncQueueControl),
]


def public_coroutines(kind: type[Any]) -> set[str]:
    return {
        name
        for name, value in vars(kind).items()
        if not name.startswith("_") and inspect.iscoroutinefunction(value)
    }


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.mark.parametrize(("control", "blocking"), PAIRS, ids=[b.__name__ for _, b in PAIRS])
def test_every_async_method_has_a_blocking_twin(
    control: type[Any], blocking: type[Blocking[Any]]
) -> None:
    twin = blocking(object.__new__(control), run)
    for name in public_coroutines(control):
        method = getattr(twin, name)
        bound = inspect.signature(getattr(object.__new__(control), name))
        assert inspect.signature(method) == bound, name
        assert method.__doc__ == getattr(control, name).__doc__, name
        assert not inspect.iscoroutinefunction(method), name


def test_a_blocking_method_runs_the_async_one_on_the_runner() -> None:
    calls: list[tuple[str, str | None]] = []

    class Fake(QueueControl):
        async def paused(self, queue: str) -> Any:
            calls.append(("paused", queue))
            return "state"

    ran: list[object] = []

    def runner(coro: Coroutine[Any, Any, T]) -> T:
        ran.append(coro)
        return asyncio.run(coro)

    queues = SyncQueueControl(object.__new__(Fake), runner)
    assert queues.paused("mail") == "state"  # type: ignore[comparison-overlap]
    assert calls == [("paused", "mail")]
    assert len(ran) == 1


# What a producer or an operator does through Client has a blocking twin on SyncClient;
# these are the client's own plumbing, or feeds (async iterators) a blocking caller cannot
# hold open, or enqueue_task (enqueue's NewTask form: enqueue_many takes NewTask objects).
NOT_TWINNED = {"audit", "audit_log", "by_idempotency_key", "close", "enqueue_task", "memory"}
NOT_TWINNED |= {"placement", "refresh", "refusals", "task_history", "topology"}


def test_every_operation_of_the_client_has_a_blocking_twin() -> None:
    for name in sorted(public_coroutines(Client) - NOT_TWINNED):
        twin = getattr(SyncClient, name, None)
        assert twin is not None, f"SyncClient has no {name}"
        assert not inspect.iscoroutinefunction(twin), name
        assert inspect.signature(twin) == inspect.signature(getattr(Client, name)), name
