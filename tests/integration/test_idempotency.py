"""Enqueueing is idempotent by idempotency key: the same key answers with the first task,
also inside a batch that mixes new and earlier tasks."""

from __future__ import annotations

import pytest

from arqd.client import Client, NewTask
from arqd.core.task import TaskStatus

pytestmark = pytest.mark.topologies()  # the engine's behaviour on every topology


async def test_idempotency_key_returns_the_first_task(client: Client) -> None:
    first = await client.enqueue("charge", {"amount": 5}, idempotency_key="order-17")
    second = await client.enqueue("charge", {"amount": 5}, idempotency_key="order-17")
    other = await client.enqueue("charge", {"amount": 5}, idempotency_key="order-18")
    assert second.id == first.id
    assert other.id != first.id
    (stats,) = await client.stats("default")
    assert stats.queued == 2


async def test_a_batch_mixing_new_and_earlier_tasks_gets_each_its_own_answer(
    client: Client,
) -> None:
    # The script reports only the tasks that were there already; every other one in the
    # batch, in either queue, must still come back as itself, in the caller's order.
    a = await client.enqueue("charge", 1, idempotency_key="k-a")
    b = await client.enqueue("charge", 2, queue="other", idempotency_key="k-b")
    batch = [
        NewTask("charge", 10),
        NewTask("charge", 11, idempotency_key="k-a"),
        NewTask("charge", 12, queue="other", priority=3),
        NewTask("charge", 13, queue="other", idempotency_key="k-b"),
        NewTask("charge", 14, delay=60),
    ]
    tasks = await client.enqueue_many(batch)
    assert [t.id for t in tasks] == [batch[0].id, a.id, batch[2].id, b.id, batch[4].id]
    assert [t.payload for t in tasks] == [10, 1, 12, 2, 14]
    assert tasks[2].priority == 3
    assert tasks[4].status is TaskStatus.SCHEDULED


async def test_a_task_is_found_by_its_idempotency_key_while_the_key_lives(
    client: Client,
) -> None:
    made = await client.enqueue("charge", 3, queue="billing", idempotency_key="order-99")
    found = await client.by_idempotency_key("billing", "order-99")
    assert found is not None
    assert (found.id, found.payload) == (made.id, 3)
    assert await client.by_idempotency_key("billing", "order-100") is None
    assert await client.by_idempotency_key("default", "order-99") is None  # per queue
