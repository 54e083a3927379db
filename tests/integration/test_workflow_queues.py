"""Workflows whose members run on other queues (other slots, on a cluster other masters):
steps travel through outboxes and notices that a relay carries over (arqd.store.relay).
Chains and groups across three queues on every topology, every way a member of another
queue ends moves the workflow on, a relay stopped between its steps is redone once, a
notice applied twice counts once, and a cancel reaches members on other queues."""

from __future__ import annotations

import itertools
from typing import Any

import member_ends
import pytest
from test_workflows import arithmetic, finished

from arqd.client import Client
from arqd.core.lease import Answer, Lease
from arqd.core.task import NewTask, TaskStatus
from arqd.core.workflows import chain, group, steps
from arqd.store.store import Store
from arqd.worker import Registry
from conftest import StartWorker, eventually
from topologies import ClusterSetup, crossslot_errors

HOME, ELSEWHERE = "default", "remote"


@pytest.fixture
def queues(topology: str, store: Store, request: pytest.FixtureRequest) -> list[str]:
    """Three queues; on the cluster, each on another master."""
    if topology != "cluster":
        return ["home", "left", "right"]
    cluster: ClusterSetup = request.getfixturevalue("cluster_setup")
    found: dict[int, str] = {}
    for n in itertools.count():
        name = f"wq{n}"
        found.setdefault(cluster.master_port_of_slot(store.keys.slot(name)), name)
        if len(found) == 3:
            return list(found.values())
    raise AssertionError("unreachable")


@pytest.mark.topologies
async def test_chains_and_groups_across_three_queues(
    client: Client, start_worker: StartWorker, queues: list[str], topology: str, request: Any
) -> None:
    home, left, right = queues
    ports = request.getfixturevalue("cluster_setup").masters() if topology == "cluster" else []
    before = crossslot_errors(ports)
    await start_worker(arithmetic(), queues=queues, concurrency=8)
    flow = chain(
        NewTask("add_one", 1, queue=left),  # 2
        group(
            [NewTask("double", queue=right), NewTask("add_one"), NewTask("double", queue=left)],
            on_failure="fail",
        ),  # [4, 3, 4]
        NewTask("total", queue=right),  # 11
        NewTask("echo"),  # 11, on the home queue
    )
    state = await client.workflows.start(flow, queue=home)
    assert [m.queue for m in state.steps[1].members] == [right, None, left]
    done = await finished(client, state.steps[3].members[0].id)
    assert (done.status, done.result) == (TaskStatus.SUCCEEDED, 11)
    members = [NewTask("double", i, queue=queues[i % 3]) for i in range(30)]
    fan = await client.workflows.group(
        members, on_failure="fail", callback=NewTask("echo", queue=right), queue=home
    )
    callback = await finished(client, fan.steps[1].members[0].id)
    assert callback.result == [2 * i for i in range(30)]
    after = await client.workflows.get(fan.id)
    assert after.status == "succeeded"
    assert all(m.status == "succeeded" for s in after.steps for m in s.members)
    assert after.steps[1].members[0].queue == right
    assert crossslot_errors(ports) == before


async def test_a_failure_elsewhere_runs_the_error_callback_and_a_retry_reopens(
    client: Client, start_worker: StartWorker
) -> None:
    registry = arithmetic()
    tries: list[int] = []

    @registry.task(max_retries=1)
    async def flaky(x: int) -> int:
        tries.append(x)
        if len(tries) <= 2:  # the first attempt and its one retry
            raise RuntimeError("not yet")
        return x

    await start_worker(registry, queues=[HOME, ELSEWHERE])
    members = [NewTask("double", 1), NewTask("flaky", 5, queue=ELSEWHERE)]
    state = await client.workflows.group(
        members, on_failure="fail", callback=NewTask("echo"), on_error=NewTask("echo")
    )
    error = await finished(client, f"{state.id}.err.1.0")
    assert error.result == {"workflow": state.id, "step": 0, "failed": [1]}
    assert (await client.workflows.get(state.id)).status == "failed"
    await client.workflows.retry(state.steps[0].members[1].id)
    callback = await finished(client, state.steps[1].members[0].id)
    assert callback.result == [2, 5]
    assert (await client.workflows.get(state.id)).status == "succeeded"


async def leases(store: Store, count: int, worker: str = "w") -> list[Lease]:
    return await member_ends.leases(store, ELSEWHERE, count, worker)


async def ends_succeeded_with_a_notice(
    store: Store, client: Client, queue: str, member: str
) -> None:
    (lease,) = await leases(store, 1)
    finished_ = await store.leases.finish_batch(queue, [Answer(lease, "succeeded", b'"ok"')])
    assert finished_.noticed == [member]


# Every way a member ends; a success on another queue also says it wrote a notice.
PATHS = [(ends_succeeded_with_a_notice, {}, "succeeded"), *member_ends.PATHS[1:]]


@pytest.mark.parametrize(("path", "options", "status"), PATHS, ids=member_ends.IDS)
async def test_every_way_a_member_elsewhere_ends_moves_the_workflow_on(
    client: Client,
    store: Store,
    path: member_ends.Path,
    options: dict[str, float],
    status: str,
) -> None:
    state = await client.workflows.group(
        [NewTask("m", 1, queue=ELSEWHERE, **options)],  # type: ignore[arg-type]
        on_failure="continue",
        callback=NewTask("cb"),
    )
    member = state.steps[0].members[0].id
    assert await client.get(member, ELSEWHERE) is not None  # the start relayed it
    await path(store, client, ELSEWHERE, member)
    ended = await client.get(member, ELSEWHERE)
    assert ended is not None
    assert ended.status.value == status
    await store.relay.sweep(ELSEWHERE)  # what a worker of the queue does within a second
    assert await store.redis.exists(store.keys.notices(ELSEWHERE)) == 0
    follower = await client.get(state.steps[1].members[0].id, HOME)
    assert follower is not None
    if status == "succeeded":
        assert follower.payload == ["ok"]
    else:
        assert follower.payload[0]["failed"] == status
    got = (await store.leases.dequeue(HOME, 1, "w3")).leases
    assert [lease.id for lease in got] == [follower.id]
    await store.leases.finish(HOME, [Answer(got[0], "succeeded", b"1")])
    assert (await client.workflows.get(state.id)).status == "succeeded"


async def test_a_relay_stopped_between_its_steps_is_redone_once(
    client: Client, store: Store
) -> None:
    flow = group(
        [NewTask("m", 1, queue=ELSEWHERE), NewTask("m", 2, queue=ELSEWHERE)],
        on_failure="fail",
        callback=NewTask("cb"),
    )
    assert await store.workflows.start(HOME, "wf1", steps(flow), None)  # no relay yet
    assert await store.redis.smembers(store.keys.outboxes(HOME)) == {b"wf1"}
    # A relay that delivered, then stopped before dropping the entries.
    entries = await store.relay.read_outbox(HOME, "wf1")
    await store.relay.deliver(HOME, "wf1", entries)
    assert await store.relay.sweep(HOME) == 2  # redone: the members are there already
    assert await store.redis.exists(store.keys.workflow_outbox(HOME, "wf1")) == 0
    assert await store.redis.smembers(store.keys.outboxes(HOME)) == set()
    got = (await store.leases.dequeue(ELSEWHERE, 10, "w")).leases
    assert sorted(lease.id for lease in got) == ["wf1.0.0", "wf1.0.1"]  # created once
    answers = [Answer(lease, "succeeded", b"%d" % (10 * int(lease.id[-1]))) for lease in got]
    finished_ = await store.leases.finish_batch(ELSEWHERE, answers)
    assert sorted(finished_.noticed) == ["wf1.0.0", "wf1.0.1"]
    # Notices applied, then the relay stopped before dropping them; applied again: once.
    notices = await store.relay.read_notices(ELSEWHERE)
    await store.relay.apply(notices[:1])
    await store.relay.apply(notices[:1])
    wf = await store.redis.hgetall(store.keys.workflow(HOME, "wf1"))
    assert wf[b"done"] == b"1"
    await store.relay.apply(notices)
    assert await store.relay.sweep(ELSEWHERE) == 2  # dropped now; counted before
    callback = await client.get("wf1.1.0", HOME)
    assert callback is not None
    assert callback.payload == [0, 10]
    (cb,) = (await store.leases.dequeue(HOME, 10, "w")).leases  # enqueued once
    await store.leases.finish(HOME, [Answer(cb, "succeeded", b"1")])
    # The workflow ended: all of its state expires, the results from elsewhere too.
    for key in (store.keys.workflow(HOME, "wf1"), store.keys.workflow_remote(HOME, "wf1")):
        assert await store.redis.pttl(key) > 0
    assert await store.redis.exists(store.keys.notices(ELSEWHERE)) == 0


async def test_a_notice_of_an_older_generation_is_stale(client: Client, store: Store) -> None:
    state = await client.workflows.group(
        [NewTask("m", 1, queue=ELSEWHERE)], on_failure="fail", callback=NewTask("cb")
    )
    member = state.steps[0].members[0].id
    (lease,) = await leases(store, 1)
    await store.leases.finish(ELSEWHERE, [Answer(lease, "failed", b'{"type":"E","message":"x"}')])
    failed = await store.relay.read_notices(ELSEWHERE)
    await client.retry(member, ELSEWHERE)  # its notice (generation 1) relayed at once
    assert (await client.workflows.get(state.id)).status == "running"
    await store.relay.apply(failed)  # the failure of generation 0, again: stale
    wf = await store.redis.hgetall(store.keys.workflow(HOME, state.id))
    assert (wf[b"st"], wf[b"done"]) == (b"r", b"0")
    (lease,) = await leases(store, 1)
    await store.leases.finish(ELSEWHERE, [Answer(lease, "succeeded", b"7")])
    await store.relay.sweep(ELSEWHERE)
    callback = await client.get(state.steps[1].members[0].id, HOME)
    assert callback is not None
    assert callback.payload == [7]


async def test_cancel_reaches_members_on_other_queues(client: Client, store: Store) -> None:
    members = [NewTask("m", i, queue=ELSEWHERE) for i in range(4)] + [NewTask("m", 9)]
    state = await client.workflows.group(members, on_failure="ignore", callback=NewTask("cb"))
    (running,) = await leases(store, 1)
    cancelled = await client.workflows.cancel(state.id)
    assert cancelled.status == "cancelled"
    statuses = {m.id: m.status for m in cancelled.steps[0].members}
    assert statuses.pop(running.id) == "active"  # asked to stop
    assert set(statuses.values()) == {"cancelled"}
    assert await leases(store, 0) == []
    await store.leases.finish(ELSEWHERE, [Answer(running, "cancelled")])
    await store.relay.sweep(ELSEWHERE)
    after = await client.workflows.get(state.id)
    assert [m.status for m in after.steps[0].members] == ["cancelled"] * 5
    outcomes = await store.redis.get(store.keys.workflow_outcomes(HOME, state.id))
    assert outcomes == b"xxxxx"
    assert after.steps[1].members[0].status == "pending"  # no later step started


async def test_a_member_cancelled_before_its_create_is_never_run(
    client: Client, store: Store
) -> None:
    flow = group([NewTask("m", i, queue=ELSEWHERE) for i in range(3)], on_failure="fail")
    assert await store.workflows.start(HOME, "late", steps(flow), None)  # not relayed yet
    entries = await store.relay.read_outbox(HOME, "late")  # a slow relay read them
    await client.workflows.cancel("late", HOME)
    await store.relay.deliver(HOME, "late", entries)  # ... and delivers them now
    assert await leases(store, 0) == []  # written cancelled: a late create finds them
    state = await client.workflows.get("late")
    assert [m.status for m in state.steps[0].members] == ["cancelled"] * 3
    assert await store.redis.get(store.keys.workflow_outcomes(HOME, "late")) == b"xxx"


async def test_a_worker_relays_its_own_ends_and_sweeps_the_rest(
    client: Client, store: Store, start_worker: StartWorker
) -> None:
    registry = Registry()

    @registry.task()
    async def echo(x: object) -> object:
        return x

    flow = group([NewTask("echo", i, queue=ELSEWHERE) for i in range(20)], on_failure="fail")
    assert await store.workflows.start(HOME, "swept", steps(chain(flow, NewTask("echo"))), None)
    await start_worker(registry, queues=[HOME, ELSEWHERE], concurrency=4)
    callback = await finished(client, "swept.1.0")  # the outbox swept, the ends relayed
    assert callback.result == list(range(20))


async def test_a_chain_of_a_thousand_steps_alternating_queues(client: Client, store: Store) -> None:
    flow = chain(*[NewTask("m", k, queue=ELSEWHERE if k % 2 else None) for k in range(1000)])
    state = await client.workflows.start(flow)
    assert len(state.steps) == 1000
    for k in range(3):  # each step's member on its queue, relayed on
        queue = ELSEWHERE if k % 2 else HOME
        (lease,) = (await store.leases.dequeue(queue, 1, "w")).leases
        assert lease.id == f"{state.id}.{k}.0"
        answer = await store.leases.finish_batch(queue, [Answer(lease, "succeeded", b"%d" % k)])
        # What the worker relays at once: a notice from elsewhere, or, for a member at
        # home whose end started a step elsewhere, its workflow's outbox.
        assert (answer.noticed, answer.outboxes) == (
            ([lease.id], []) if k % 2 else ([], [state.id])
        )
        await store.relay.notices(queue, answer.noticed)
        for workflow_id in answer.outboxes:
            await store.relay.outbox(queue, workflow_id)
    fourth = await client.get(f"{state.id}.3.0", ELSEWHERE)
    assert fourth is not None
    assert fourth.payload == 3  # its own payload
    assert (await client.workflows.get(state.id)).step == 3


async def test_steps_move_on_without_the_sweep(client: Client, start_worker: StartWorker) -> None:
    """The worker relays what its finishes left at once: with its sweep off, a chain that
    goes back and forth between two queues still ends."""
    worker = await start_worker(arithmetic(), queues=[HOME, ELSEWHERE])

    async def scheduling() -> bool:
        return worker.scheduler is not None

    await eventually(scheduling)
    assert worker.scheduler is not None
    worker.scheduler.relay = None
    flow = chain(
        NewTask("add_one", 1, queue=ELSEWHERE),  # 2, relayed by the start
        NewTask("double"),  # 4: a notice from elsewhere
        group([NewTask("double", queue=ELSEWHERE), NewTask("add_one")], on_failure="fail"),
        NewTask("total", queue=ELSEWHERE),  # 13: an outbox after a member at home
        NewTask("echo"),
    )
    state = await client.workflows.start(flow)
    done = await finished(client, state.steps[4].members[0].id)
    assert done.result == 13
