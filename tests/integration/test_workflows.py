"""Workflows against a real Redis: chains pass results on, groups hand every result to
their callback in order, failure policies, a retry that re-opens a failed workflow, a
replayed finish counted once, and every way a member can end moves the workflow on in
the very script that ended it."""

from __future__ import annotations

import asyncio
import time

import member_ends
import orjson
import pytest

from arqd.client import Client
from arqd.core.errors import InvalidTask, InvalidTransition, NonRetryable, WorkflowNotFound
from arqd.core.lease import Answer, Lease
from arqd.core.task import NewTask, Task, TaskStatus
from arqd.core.workflows import chain, group
from arqd.store.store import Store
from arqd.worker import Registry
from conftest import StartWorker, eventually


def arithmetic() -> Registry:
    registry = Registry()

    @registry.task()
    async def add_one(x: int) -> int:
        return x + 1

    @registry.task()
    async def double(x: int) -> int:
        return 2 * x

    @registry.task()
    async def total(xs: list[int]) -> int:
        return sum(xs)

    @registry.task()
    async def echo(x: object) -> object:
        return x

    @registry.task()
    async def refuse(x: object) -> None:
        raise NonRetryable("no")

    return registry


async def finished(client: Client, task_id: str, timeout: float = 15) -> Task:
    async def there() -> bool:
        return await client.get(task_id) is not None

    await eventually(there, timeout)
    return await client.wait(task_id, timeout=timeout)


@pytest.mark.topologies
async def test_a_chain_of_groups_passes_results_on(
    client: Client, start_worker: StartWorker
) -> None:
    await start_worker(arithmetic())
    flow = chain(
        NewTask("add_one", 1),  # 2
        group([NewTask("double"), NewTask("add_one")], on_failure="fail"),  # [4, 3]
        NewTask("total"),  # 7
        NewTask("double"),  # 14
    )
    state = await client.workflows.start(flow)
    assert state.status == "running"
    assert [len(step.members) for step in state.steps] == [1, 2, 1, 1]
    last = state.steps[-1].members[0].id
    done = await finished(client, last)
    assert (done.status, done.result) == (TaskStatus.SUCCEEDED, 14)
    after = await client.workflows.get(state.id)
    assert after.status == "succeeded"
    assert all(m.status == "succeeded" for s in after.steps for m in s.members)


async def test_a_group_callback_gets_every_result_in_order(
    client: Client, start_worker: StartWorker
) -> None:
    await start_worker(arithmetic(), concurrency=8)
    members = [NewTask("double", i) for i in range(50)]
    state = await client.workflows.group(members, on_failure="fail", callback=NewTask("echo"))
    callback = await finished(client, state.steps[1].members[0].id)
    assert callback.result == [2 * i for i in range(50)]


async def test_policies_continue_and_ignore(client: Client, start_worker: StartWorker) -> None:
    await start_worker(arithmetic())
    members = [NewTask("double", 1), NewTask("refuse"), NewTask("double", 3)]
    cont = await client.workflows.group(members, on_failure="continue", callback=NewTask("echo"))
    ign = await client.workflows.group(members, on_failure="ignore", callback=NewTask("echo"))
    seen = (await finished(client, cont.steps[1].members[0].id)).result
    assert seen[0] == 2
    assert seen[2] == 6
    assert seen[1]["failed"] == "failed"
    assert "no" in orjson.dumps(seen[1]["error"]).decode()
    assert (await finished(client, ign.steps[1].members[0].id)).result == [2, None, 6]


async def test_fail_runs_the_error_callback_and_a_retry_reopens_once(
    client: Client, start_worker: StartWorker
) -> None:
    registry = arithmetic()
    tries: list[int] = []

    @registry.task()
    async def flaky(x: int) -> int:
        tries.append(x)
        if len(tries) == 1:
            raise NonRetryable("first time")
        return x

    await start_worker(registry)
    members = [NewTask("double", 1), NewTask("flaky", 5)]
    state = await client.workflows.group(
        members, on_failure="fail", callback=NewTask("echo"), on_error=NewTask("echo")
    )
    error = await finished(client, f"{state.id}.err.1.0")
    assert error.result == {"workflow": state.id, "step": 0, "failed": [1]}
    assert (await client.workflows.get(state.id)).status == "failed"
    await client.workflows.retry(state.steps[0].members[1].id)
    callback = await finished(client, state.steps[1].members[0].id)
    assert callback.result == [2, 5]
    after = await client.workflows.get(state.id)
    assert after.status == "succeeded"
    assert [m.id for m in after.error_callbacks] == [error.id]
    events = await client.store.events.read_after({"default": "0-0"}, 1, count=10_000)
    queued = [e for e in events if e.fields[b"task"] == callback.id.encode()]
    assert [e.fields[b"event"] for e in queued].count(b"queued") == 1


async def test_a_replayed_finish_is_counted_once(client: Client, store: Store) -> None:
    state = await client.workflows.group(
        [NewTask("a", 1), NewTask("a", 2)], on_failure="fail", callback=NewTask("cb")
    )
    first, second = await leases(store, 2)
    answer = Answer(first, "succeeded", b"10")
    assert await store.leases.finish("default", [answer]) == [True]
    assert await store.leases.finish("default", [answer]) == [False]  # the lost reply's resend
    wf = await store.redis.hgetall(store.keys.workflow("default", state.id))
    assert wf[b"done"] == b"1"
    both = [answer, Answer(second, "succeeded", b"20")]
    assert await store.leases.finish("default", both) == [False, True]
    assert await store.leases.finish("default", both) == [False, False]
    callback = await client.get(state.steps[1].members[0].id)
    assert callback is not None
    assert callback.payload == [10, 20]
    (cb,) = await leases(store, 1)
    assert cb.id == callback.id
    assert await leases(store, 0) == []  # the callback was enqueued once


async def leases(store: Store, count: int, worker: str = "w") -> list[Lease]:
    return await member_ends.leases(store, "default", count, worker)


async def test_a_dequeue_leaves_an_expired_member_s_end_to_dequeue_members(
    client: Client, store: Store
) -> None:
    state = await client.workflows.group(
        [NewTask("m", 1, expires_in=0.05)], on_failure="continue", callback=NewTask("cb")
    )
    await asyncio.sleep(0.1)  # past its 50 ms deadline
    # The dequeue that takes it leaves its end to the script with the workflow helpers,
    # which the next dequeue runs.
    first = await store.leases.dequeue("default", 1, "w")
    assert first.member_left
    assert first.next_event_ms == 0
    assert not (await store.leases.dequeue("default", 1, "w")).member_left
    ended = await client.get(state.steps[0].members[0].id)
    assert ended is not None
    assert ended.status is TaskStatus.EXPIRED


@pytest.mark.parametrize("policy", ["continue", "fail"])
@pytest.mark.parametrize(("path", "options", "status"), member_ends.PATHS, ids=member_ends.IDS)
async def test_every_way_a_member_ends_moves_the_workflow_on(
    client: Client,
    store: Store,
    path: member_ends.Path,
    options: dict[str, float],
    status: str,
    policy: str,
) -> None:
    state = await client.workflows.group(
        [NewTask("m", 1, **options)],  # type: ignore[arg-type]
        on_failure=policy,  # type: ignore[arg-type]
        callback=NewTask("cb"),
        on_error=NewTask("err"),
    )
    member = state.steps[0].members[0].id
    await path(store, client, "default", member)
    ended = await client.get(member)
    assert ended is not None
    assert ended.status.value == status
    assert ended.finished_at
    after = await client.workflows.get(state.id)
    if status == "succeeded" or policy == "continue":
        next_id, want = state.steps[1].members[0].id, "running"  # at its callback
    else:
        next_id, want = f"{state.id}.err.1.0", "failed"
    assert after.status == want
    follower = await client.get(next_id)
    assert follower is not None
    # Enqueued by the very script that ended the member: the same Redis time.
    assert follower.created_at == ended.finished_at
    if next_id.endswith("err.1.0"):
        assert follower.payload == {"workflow": state.id, "step": 0, "failed": [0]}
    elif status == "succeeded":
        assert follower.payload == ["ok"]
    else:
        assert follower.payload[0]["failed"] == status
    # The callback (or error callback) ends the workflow as it runs: succeeded, or failed.
    await finish_leased(store, next_id)
    final = await client.workflows.get(state.id)
    assert final.status == ("succeeded" if want == "running" else "failed")


async def finish_leased(store: Store, task_id: str) -> None:
    """Lease ``task_id`` (unless a dequeue already did) and record its success."""
    await store.leases.dequeue("default", 10, "w3")
    token = await store.redis.hget(store.keys.task("default", task_id), "tok")
    assert isinstance(token, bytes)
    lease = Lease("default", task_id, token, "cb", b"", 1, None, None, None, 0)
    assert await store.leases.finish("default", [Answer(lease, "succeeded", b"1")]) == [True]


async def test_a_10000_member_group_is_created_in_one_call_under_a_second(
    client: Client, store: Store
) -> None:
    members = [NewTask("m", i) for i in range(10_000)]
    started = time.perf_counter()
    state = await client.workflows.group(members, on_failure="ignore", callback=NewTask("cb"))
    took = time.perf_counter() - started
    assert took < 1.0, f"{took:.3f} s"
    (stats,) = await client.stats("default")
    assert stats.queued == 10_000
    wf = store.keys.workflow("default", state.id)
    size = await store.redis.memory_usage(wf) or 0
    outcomes = store.keys.workflow_outcomes("default", state.id)
    await store.redis.setrange(outcomes, 9_999, b"\0")  # as long as it grows to
    size += await store.redis.memory_usage(outcomes) or 0
    plain = await client.enqueue("m", 9_999)
    member = state.steps[0].members[-1].id
    task_bytes = await store.redis.memory_usage(store.keys.task("default", member)) or 0
    plain_bytes = await store.redis.memory_usage(store.keys.task("default", plain.id)) or 0
    per_member = size / 10_000 + task_bytes - plain_bytes  # what being a member adds
    print(
        f"10,000-member group: {took * 1000:.0f} ms; per member: workflow keys "
        f"{size / 10_000:.1f} B, the task's field wf {task_bytes - plain_bytes} B "
        f"({plain_bytes} B -> {task_bytes} B)"
    )
    assert per_member < 100


async def test_bad_workflows_are_refused(client: Client) -> None:
    with pytest.raises(InvalidTask, match="on_failure"):
        await client.workflows.group([NewTask("m")], on_failure="maybe")  # type: ignore[arg-type]
    with pytest.raises(InvalidTask, match="invalid queue name"):
        await client.workflows.chain(NewTask("m", queue="else where"))
    with pytest.raises(InvalidTask, match="delay"):
        await client.workflows.chain(NewTask("m", delay=1))
    with pytest.raises(WorkflowNotFound):
        await client.workflows.get("nope")


@pytest.mark.parametrize("size", [5, 40])  # one LREM a member; the list filtered once
async def test_cancel_a_workflow(client: Client, store: Store, size: int) -> None:
    state = await client.workflows.chain(
        group([NewTask("m", i) for i in range(size)], on_failure="ignore"), NewTask("next")
    )
    bystander = await client.enqueue("other")  # behind the members: FIFO
    running = await leases(store, 2)
    cancelled = await client.workflows.cancel(state.id)
    assert cancelled.status == "cancelled"
    statuses = [m.status for m in cancelled.steps[0].members]
    assert statuses.count("cancelled") == size - 2
    assert statuses.count("active") == 2
    for lease in running:
        task = await client.get(lease.id)
        assert task is not None
        assert task.cancel_requested
        await store.leases.finish("default", [Answer(lease, "cancelled")])
    after = await client.workflows.get(state.id)
    assert {m.status for m in after.steps[0].members} == {"cancelled"}
    assert after.steps[1].members[0].status == "pending"  # never started
    (left,) = await leases(store, 1)
    assert left.id == bystander.id
    (stats,) = await client.stats("default")
    assert (stats.queued, stats.cancelled) == (0, size)
    with pytest.raises(InvalidTransition, match="already ended"):
        await client.workflows.cancel(state.id)
    assert await store.redis.pttl(store.keys.workflow("default", state.id)) > 0


async def test_a_result_is_kept_until_its_step_ends(client: Client, store: Store) -> None:
    state = await client.workflows.group(
        [NewTask("a", 1, result_ttl=0.05), NewTask("a", 2)],
        on_failure="fail",
        callback=NewTask("cb"),
    )
    first, second = await leases(store, 2)
    await store.leases.finish("default", [Answer(first, "succeeded", b'"early"')])
    await asyncio.sleep(0.15)  # past the first member's own result TTL
    await store.leases.finish("default", [Answer(second, "succeeded", b'"late"')])
    callback = await client.get(state.steps[1].members[0].id)
    assert callback is not None
    assert callback.payload == ["early", "late"]
    kept = await store.redis.pttl(store.keys.task("default", first.id))
    assert 0 < kept <= 50  # expiring again, after its own TTL

    async def gone() -> bool:
        return await client.get(first.id) is None

    await eventually(gone)


async def test_a_10000_member_group_ends_in_one_finish(client: Client, store: Store) -> None:
    members = [NewTask("m", i) for i in range(10_000)]
    state = await client.workflows.group(members, on_failure="fail", callback=NewTask("cb"))
    taken: list[Lease] = []
    while len(taken) < 10_000:
        taken += (await store.leases.dequeue("default", 1000, "w")).leases
    answers = [
        Answer(lease, "succeeded", b"%d" % int(lease.id.rsplit(".", 1)[1])) for lease in taken
    ]
    for first in range(0, 9_999, 1000):
        await store.leases.finish("default", answers[first : min(first + 1000, 9_999)])
    started_at = time.perf_counter()
    assert await store.leases.finish("default", answers[9_999:]) == [True]
    took = time.perf_counter() - started_at
    print(f"the finish that ends a 10,000-member group: {took * 1000:.0f} ms")
    callback = await client.get(state.steps[1].members[0].id)
    assert callback is not None
    assert callback.payload == list(range(10_000))
    assert took < 1.0
