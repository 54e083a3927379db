"""Task types' breakers as dashboards and alerts see them: every served type's from the
start, and half-open as soon as the open period ends, with no task needed to notice."""

from __future__ import annotations

import pytest

from arqd.client import Client
from arqd.core.task import TaskStatus
from arqd.observability.metrics import Metrics
from arqd.resilience.breaker import BreakerPolicy, State
from arqd.store.store import Store
from arqd.worker import Registry
from conftest import StartWorker, eventually

pytestmark = pytest.mark.topologies()  # the engine's behaviour on every topology


def state_of(metrics: Metrics, name: str) -> float | None:
    return metrics.registry.get_sample_value("arq_circuit_breaker_state", {"name": name})


async def test_every_served_type_breaker_is_reported_closed_before_it_fails(
    store: Store, start_worker: StartWorker
) -> None:
    registry = Registry()

    @registry.task()
    async def guarded(payload: None) -> None:
        return None

    @registry.task(breaker=False)
    async def unguarded(payload: None) -> None:
        return None

    await start_worker(registry, queues=["default", "mail"])

    async def registered() -> bool:
        return bool(await store.workers.live())

    await eventually(registered)
    metrics = Metrics()
    await metrics.refresh(store)
    assert state_of(metrics, "task:default:guarded") == 0
    assert state_of(metrics, "task:mail:guarded") == 0
    assert state_of(metrics, "task:default:unguarded") is None  # it has no breaker


async def test_an_open_breaker_turns_half_open_when_its_time_is_up(
    client: Client, store: Store, start_worker: StartWorker
) -> None:
    registry = Registry()

    @registry.task(max_retries=0, breaker=BreakerPolicy(threshold=1, timeout=0.5))
    async def flaky(payload: None) -> None:
        raise ConnectionError("the dependency is down")

    await start_worker(registry)
    task = await client.enqueue("flaky")
    assert (await client.wait(task.id, timeout=10)).status is TaskStatus.FAILED
    (opened,) = await client.breakers()
    assert opened.open_until is not None  # open (or half-open already, on a slow machine)

    # No task of the type comes: the idle worker wakes at the end of the open period.
    async def half_open() -> bool:
        (info,) = await client.breakers()
        return info.state is State.HALF_OPEN

    await eventually(half_open, timeout=5)
    entries = await store.events.read_after({"default": "0-0"}, block_ms=1, count=1000)
    (event,) = [e for e in entries if e.fields[b"event"] == b"breaker_half_open"]
    moved_ms = int(event.id.split("-")[0])
    late = moved_ms / 1000 - opened.open_until.timestamp()
    assert 0 <= late < 0.3, f"half-open {late:.2f} s after the open period ended"
    metrics = Metrics()
    await metrics.refresh(store)
    assert state_of(metrics, "task:default:flaky") == 2
