"""Event feeds against a real Redis: resumed over every queue they miss nothing (a queue
with a backlog of thousands while others are quiet, a queue that appears after the client
connected, several disconnects in a row), and trimming is reported as a gap, never
skipped in silence. tests/unit/test_feed_model.py holds the logic to a model."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from arqd.client import Client
from arqd.core.settings import Settings
from arqd.core.task import NewTask
from arqd.feeds import EventFeed, Gap, StreamEvent
from arqd.store.connection import connect
from arqd.store.store import Store

pytestmark = pytest.mark.topologies()  # the engine's behaviour on every topology


async def take(feed: EventFeed, count: int, timeout: float = 10) -> list[StreamEvent | Gap]:
    """The feed's next ``count`` items; the feed is closed after (the client drops)."""
    items: list[StreamEvent | Gap] = []

    async def read() -> None:
        async for item in feed:
            items.append(item)
            if len(items) == count:
                break

    await asyncio.wait_for(read(), timeout)
    feed.close()
    return items


def seen(items: list[StreamEvent | Gap]) -> set[tuple[str, str]]:
    return {(e.queue, e.id) for e in items if isinstance(e, StreamEvent)}


async def every_event(store: Store, queues: list[str]) -> set[tuple[str, str]]:
    found = await store.events.read_after(dict.fromkeys(queues, "0-0"), 1, count=100_000)
    return {(e.queue, e.id) for e in found}


async def test_resumes_over_every_queue_miss_nothing_of_a_backlog_and_quiet_queues(
    client: Client, store: Store
) -> None:
    await client.enqueue("echo", queue="quiet")
    feed = client.events()
    await feed.start()
    # A backlog of thousands in one queue, with a quiet queue's events among them.
    for n in range(6):
        await client.enqueue_many([NewTask("echo", queue="busy") for _ in range(500)])
        await client.enqueue("echo", n, queue="quiet")
    received: list[StreamEvent | Gap] = []
    for size in itertools.cycle((37, 450, 3, 1000)):  # drop, then resume, several times
        if 3006 - len(seen(received)) <= 1000:
            break
        received += await take(feed, size)
        last = [e for e in received if isinstance(e, StreamEvent)][-1]
        feed = client.events(last_event_id=last.id)

    # The rest on one connection. (A client that drops again and again after fewer events
    # than other queues wrote in the millisecond of its last one may be sent the same
    # repeats each time: a resume starts the other streams at that millisecond.)
    async def rest() -> None:
        async for item in feed:
            received.append(item)
            if len(seen(received)) == 3006:
                break

    await asyncio.wait_for(rest(), 10)
    feed.close()
    assert not any(isinstance(item, Gap) for item in received)
    expected = await every_event(store, ["busy", "quiet"])
    assert seen(received) == expected - {("quiet", min(e for q, e in expected if q == "quiet"))}


async def test_a_queue_made_after_the_client_connected_is_not_missed_on_resume(
    client: Client,
) -> None:
    await client.enqueue("echo", queue="old")
    feed = client.events()
    await feed.start()
    new = await client.enqueue("echo", queue="new")  # a queue the feed has not seen
    await client.enqueue("echo", queue="old")
    (first,) = await take(feed, 1)  # the client drops after one event
    assert isinstance(first, StreamEvent)
    resumed = client.events(last_event_id=first.id)
    rest = await take(resumed, 1 if first.queue == "new" else 2)
    queues_seen = [e.fields[b"task"].decode() for e in [first, *rest] if isinstance(e, StreamEvent)]
    assert new.id in queues_seen


async def test_a_burst_larger_than_the_cap_is_reported_as_a_gap(settings: Settings) -> None:
    small = settings.model_copy(update={"events_max": 100})
    async with Client(Store(connect(small.redis_url or ""), small)) as client:
        await client.enqueue("echo", queue="burst")
        feed = client.events(queue="burst")
        await feed.start()
        for _ in range(5):  # trimmed before the feed reads them
            await client.enqueue_many([NewTask("echo", queue="burst") for _ in range(300)])
        first, second = await take(feed, 2)
    assert isinstance(first, Gap)
    assert first.queue == "burst"
    assert first.missed is not None
    assert first.missed > 0
    assert isinstance(second, StreamEvent)
    assert second.id == first.resumes_at


async def test_a_resume_from_an_id_older_than_the_oldest_kept_is_a_gap(settings: Settings) -> None:
    small = settings.model_copy(update={"events_max": 100})
    async with Client(Store(connect(small.redis_url or ""), small)) as client:
        for _ in range(5):
            await client.enqueue_many([NewTask("echo") for _ in range(300)])
        for queue in ("default", None):  # one queue, and every queue
            feed = client.events(queue=queue, last_event_id="1-0")
            (gap,) = await take(feed, 1)
            assert isinstance(gap, Gap)
            assert gap.missed is None  # how many is not known: the feed did not read them
            assert gap.after <= "1-0"


async def test_no_gap_is_reported_when_the_feed_kept_up(settings: Settings) -> None:
    small = settings.model_copy(update={"events_max": 100})
    async with Client(Store(connect(small.redis_url or ""), small)) as client:
        feed = client.events(queue="steady")
        await feed.start()
        received: list[StreamEvent | Gap] = []
        for _ in range(10):  # trimming goes on, but only of what the feed already read
            await client.enqueue_many([NewTask("echo", queue="steady") for _ in range(50)])
            received += await take(feed, 50)
            feed = client.events(queue="steady", last_event_id=received[-1].id)  # type: ignore[union-attr]
        assert not [item for item in received if isinstance(item, Gap)]
        assert len(seen(received)) == 500
