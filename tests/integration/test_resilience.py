"""Rate limits, concurrency limits and circuit breakers across worker processes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from arqd.client import Client, NewTask
from arqd.core.errors import BreakerNotFound, CircuitOpen
from arqd.core.settings import Settings
from arqd.core.task import Task, TaskStatus
from arqd.resilience.breaker import BreakerPolicy, State
from arqd.resilience.circuit import CircuitBreaker
from arqd.store.codec import Token
from arqd.store.store import Store
from conftest import WorkerProcess, eventually

pytestmark = pytest.mark.topologies()  # the engine's behaviour on every topology


async def wait_all(client: Client, tasks: list[Task], timeout: float = 30) -> list[Task]:
    return [await client.wait(t.id, timeout=timeout) for t in tasks]


def ms(task: Task, field: str) -> float:
    value = getattr(task, field)
    assert value is not None
    return float(value.timestamp() * 1000)


async def test_a_rate_limit_holds_across_three_worker_processes(
    client: Client, settings: Settings, workers: list[WorkerProcess]
) -> None:
    limited = await client.enqueue_many([NewTask("limited") for _ in range(25)])
    free = await client.enqueue_many([NewTask("free") for _ in range(10)])
    workers.extend(WorkerProcess(settings, "resilience_tasks") for _ in range(3))

    done_free = await wait_all(client, free)
    done = await wait_all(client, limited)
    assert {t.status for t in done} == {TaskStatus.SUCCEEDED}
    assert {t.attempts for t in done} == {1}  # waiting burned no retries
    starts = sorted(ms(t, "started_at") for t in done)
    # Slots are reserved 100 ms apart; a start may lag its slot on a loaded machine, which
    # can bunch it with the next one, so allow one task beyond the burst in any window.
    burst, interval = 1, 100.0
    for i in range(len(starts)):
        for j in range(i + 1, len(starts)):
            assert starts[j] - starts[i] >= (j - i - burst - 1) * interval - 2
    assert starts[-1] - starts[0] >= (len(starts) - 1 - burst - 1) * interval
    # Other types flowed past the backlog: all free tasks ran before most limited ones.
    assert max(ms(t, "finished_at") for t in done_free) < starts[10]


async def test_a_concurrency_limit_holds_across_worker_processes(
    client: Client, settings: Settings, workers: list[WorkerProcess]
) -> None:
    tasks = await client.enqueue_many([NewTask("capped", 0.15) for _ in range(8)])
    workers.extend(WorkerProcess(settings, "resilience_tasks") for _ in range(3))
    done = await wait_all(client, tasks)
    spans = [(ms(t, "started_at"), ms(t, "finished_at")) for t in done]
    most = max(sum(1 for s, e in spans if s <= at < e) for at, _ in spans)
    assert most == 2
    assert {t.attempts for t in done} == {1}


async def breaker_state(store: Store, task_type: str) -> State:
    for name, fields in await store.limits.type_breakers("default"):
        if name == task_type:
            return State(int(fields[b"state"]))
    return State.CLOSED


async def events(store: Store) -> list[str]:
    read = await store.events.read_after({"default": "0-0"}, 1, 10_000)
    return [event.fields[b"event"].decode() for event in read]


async def test_a_task_type_breaker_holds_its_tasks_and_recovers(
    client: Client, store: Store, settings: Settings, workers: list[WorkerProcess]
) -> None:
    mode = f"{settings.key_prefix}:test:mode"
    await store.redis.set(mode, "down")
    env = {"CIRCUIT_BREAKER_TIMEOUT": "1000", "ARQD_CONCURRENCY": "1"}
    workers.extend(WorkerProcess(settings, "resilience_tasks", 5000, **env) for _ in range(2))

    first = await wait_all(
        client, await client.enqueue_many([NewTask("dependent") for _ in range(5)])
    )
    assert {t.status for t in first} == {TaskStatus.FAILED}
    assert await breaker_state(store, "dependent") is State.OPEN

    backlog = await client.enqueue_many([NewTask("dependent") for _ in range(6)])
    others = await wait_all(client, await client.enqueue_many([NewTask("free") for _ in range(3)]))
    assert {t.status for t in others} == {TaskStatus.SUCCEEDED}
    waiting = [await client.get(t.id) for t in backlog]
    assert all(t is not None and (t.status, t.attempts) == (TaskStatus.QUEUED, 0) for t in waiting)

    async def reopened() -> bool:
        return (await events(store)).count("breaker_opened") == 2

    await eventually(reopened, timeout=10)  # after 1 s one trial ran, failed: open again
    tried = [t for t in [await client.get(t.id) for t in backlog] if t and t.attempts]
    assert len(tried) == 1
    assert tried[0].status is TaskStatus.FAILED

    await store.redis.set(mode, "up")
    rest = await wait_all(client, [t for t in backlog if t.id != tried[0].id])
    assert {t.status for t in rest} == {TaskStatus.SUCCEEDED}
    assert await breaker_state(store, "dependent") is State.CLOSED
    seen = await events(store)
    assert seen.count("breaker_half_open") == 2
    assert seen.count("breaker_closed") == 1
    breakers = {b.name: b for b in await client.breakers()}
    assert breakers["task:default:dependent"].state is State.CLOSED


async def test_a_named_breaker_shared_by_callers(store: Store) -> None:
    policy = BreakerPolicy(threshold=3, timeout=0.2)
    first, second = (CircuitBreaker("payments", store, policy) for _ in range(2))
    for _ in range(3):
        try:
            async with first:
                raise ConnectionError("payments down")
        except ConnectionError:
            pass
    with pytest.raises(CircuitOpen) as refused:
        async with second:
            raise AssertionError("an open breaker must refuse")
    assert 0 < (refused.value.delay or 0) <= 0.2
    await asyncio.sleep(0.21)  # the breaker's open time (200 ms) lapses: a trial may pass
    async with second:  # the trial
        try:
            async with first:
                raise AssertionError("only one trial at a time")
        except CircuitOpen:
            pass
    async with first:  # the trial succeeded: closed again
        pass
    breaker_events: Any = await store.redis.xrange(store.keys.breaker_events())
    assert [e[b"event"] for _, e in breaker_events] == [
        b"breaker_opened",
        b"breaker_half_open",
        b"breaker_closed",
    ]


async def test_breakers_can_be_listed_and_reset(client: Client, store: Store) -> None:
    policy = BreakerPolicy(threshold=1, timeout=60)
    try:
        async with CircuitBreaker("mail", store, policy):
            raise ConnectionError("smtp down")
    except ConnectionError:
        pass
    (info,) = await client.breakers()
    assert (info.name, info.state, info.failures) == ("mail", State.OPEN, 1)
    assert info.open_until is not None
    reset = await client.reset_breaker("mail")
    assert reset.state is State.CLOSED
    with pytest.raises(BreakerNotFound, match="never-failed"):
        await client.reset_breaker("never-failed")
    assert await client.breaker("never-failed") is None


async def take_token(store: Store, subject: str, interval_ms: float, burst: int) -> Token:
    (token,) = await store.limits.take_tokens("test", [(subject, interval_ms, burst)])
    return token


async def test_rate_limit_script_with_concurrent_callers(store: Store) -> None:
    results = await asyncio.gather(*(take_token(store, "key", 60_000, 5) for _ in range(50)))
    allowed = [r for r in results if r.allowed]
    assert len(allowed) == 5
    assert sorted(r.remaining for r in allowed) == [0, 1, 2, 3, 4]
    refused = [r for r in results if not r.allowed]
    assert all(55_000 < r.retry_after_ms <= 60_000 for r in refused)


async def test_tokens_of_several_limits_in_one_call_are_taken_in_order(store: Store) -> None:
    wanted = [("a", 60_000.0, 2), ("b", 60_000.0, 1), ("a", 60_000.0, 2), ("a", 60_000.0, 2)]
    verdicts = await store.limits.take_tokens("test", wanted)
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert [v.remaining for v in verdicts] == [1, 0, 0, 0]  # tokens left after each
    assert 59_000 < verdicts[3].retry_after_ms <= 60_000  # a's next token: one interval away
    assert (await take_token(store, "b", 60_000, 1)).allowed is False
    assert (await take_token(store, "c", 60_000, 1)).allowed is True


async def test_rate_limit_refills_one_token_per_interval(store: Store) -> None:
    assert (await take_token(store, "refill", 100, 1)).allowed
    refused = await take_token(store, "refill", 100, 1)
    assert not refused.allowed
    retry = refused.retry_after_ms
    assert 0 < retry <= 100
    await asyncio.sleep(retry / 1000 + 0.005)  # the time the refusal said to wait passes
    start = time.monotonic()
    assert (await take_token(store, "refill", 100, 1)).allowed
    assert time.monotonic() - start < 1
