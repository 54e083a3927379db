"""Each way a workflow member ends, driven through the store on the member's queue: the
paths test_workflows.py (members at home) and test_workflow_queues.py (members on another
queue) both run, each a function of (store, client, queue, member id)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from arqd.client import Client
from arqd.core.lease import Answer, Lease
from arqd.core.task import TaskStatus
from arqd.store.store import Store
from conftest import eventually

ERROR = b'{"type":"E","message":"x"}'


async def leases(store: Store, queue: str, count: int, worker: str = "w") -> list[Lease]:
    """Exactly ``count`` leases of ``queue`` (0: none was ready)."""
    got = (await store.leases.dequeue(queue, max(count, 1), worker)).leases
    assert len(got) == count
    return got


async def taken_again(store: Store, queue: str, worker: str) -> Lease:
    """The member once a dequeue hands it out again (after a retry or a lapsed lease)."""
    got: list[Lease] = []

    async def leased() -> bool:
        got[:] = (await store.leases.dequeue(queue, 1, worker)).leases
        return bool(got)

    await eventually(leased)
    return got[0]


async def dequeue_until(
    store: Store, client: Client, queue: str, member: str, status: TaskStatus, worker: str
) -> None:
    """Dequeue until the member ends ``status`` (a dequeue ends expired and lapsed ones)."""

    async def ended() -> bool:
        await store.leases.dequeue(queue, 1, worker)
        task = await client.get(member, queue)
        return task is not None and task.status is status

    await eventually(ended)


async def ends_succeeded(store: Store, client: Client, queue: str, member: str) -> None:
    (lease,) = await leases(store, queue, 1)
    assert await store.leases.finish(queue, [Answer(lease, "succeeded", b'"ok"')]) == [True]


async def ends_failed_after_retries(store: Store, client: Client, queue: str, member: str) -> None:
    (lease,) = await leases(store, queue, 1)
    await store.leases.finish(queue, [Answer(lease, "retry", ERROR, 0)])
    again = await taken_again(store, queue, "w")
    await store.leases.finish(queue, [Answer(again, "failed", ERROR)])


async def ends_cancelled(store: Store, client: Client, queue: str, member: str) -> None:
    await client.cancel(member)


async def ends_cancelled_running(store: Store, client: Client, queue: str, member: str) -> None:
    (lease,) = await leases(store, queue, 1)
    await client.cancel(member)
    await store.leases.finish(queue, [Answer(lease, "cancelled")])


async def ends_expired(store: Store, client: Client, queue: str, member: str) -> None:
    await dequeue_until(store, client, queue, member, TaskStatus.EXPIRED, "w")


async def ends_lease_lost_and_reclaimed(
    store: Store, client: Client, queue: str, member: str
) -> None:
    await leases(store, queue, 1, "dead-worker")  # its lease lapses after the lease timeout
    again = await taken_again(store, queue, "w2")
    await store.leases.finish(queue, [Answer(again, "succeeded", b'"ok"')])


async def ends_lease_lost_for_good(store: Store, client: Client, queue: str, member: str) -> None:
    await leases(store, queue, 1, "dead-worker")
    await dequeue_until(store, client, queue, member, TaskStatus.FAILED, "w2")


Path = Callable[[Store, Client, str, str], Awaitable[None]]
# (how, the member's options, the status the callback sees it in)
PATHS: list[tuple[Path, dict[str, float], str]] = [
    (ends_succeeded, {}, "succeeded"),
    (ends_failed_after_retries, {}, "failed"),
    (ends_cancelled, {}, "cancelled"),
    (ends_cancelled_running, {}, "cancelled"),
    (ends_expired, {"expires_in": 0.05}, "expired"),
    (ends_lease_lost_and_reclaimed, {}, "succeeded"),
    (ends_lease_lost_for_good, {"max_retries": 0}, "failed"),
]
IDS = [path.__name__ for path, _, _ in PATHS]
