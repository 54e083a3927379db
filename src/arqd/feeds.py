"""Live event feeds a client follows: task events over one queue or all, and the system
streams, each resumable from the last event id seen, and each telling when trimming took
events before they were read.

A feed reads its streams in snapshots (``Events.snapshot``) and passes events on in id
order across streams (a ``Follower`` decides what, without I/O). Two rules make a resume
miss nothing:

- *The horizon.* A stream whose read was cut at ``count`` entries may hold more. Events of
  other streams newer than the last entry read from it wait for the next read, so once an
  event has been passed on, every older event of every stream has been too. On a cluster,
  where each slot's streams are read at their own moment, events past the snapshot's
  ``bound`` (the oldest of those moments) wait likewise.
- *The queue names.* The names are read in the same snapshot, and an enqueue adds its
  queue's name before the queue's first event; a snapshot that shows a new queue is read
  again with it, from its start.

Each stream numbers its own entries, so another stream may write an entry later in the
very millisecond of the last id a client saw. Resuming over several streams therefore
starts the *other* streams from the beginning of that millisecond: their events of that
one millisecond may come again (dedupe on queue and id). The stream that holds the id
resumes exactly after it, as a feed over one stream does.

A ``Gap`` is passed on, in place, when entries after a stream's position were trimmed from
the capped stream before the feed read them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from arqd.store.events import (
    EVENT_ID,
    START,
    SYSTEM_SOURCES,
    Snapshot,
    StreamCounts,
    StreamEvent,
    id_key,
    just_before,
)
from arqd.store.store import Store

__all__ = [
    "EVENT_ID",
    "SYSTEM_SOURCES",
    "EventFeed",
    "EventFilter",
    "Follower",
    "Gap",
    "StreamEvent",
    "SystemFeed",
]

BLOCK_MS = 1000  # each wait blocks at most this long: a closed feed ends, new queues show
COUNT = 200  # entries read from each stream at most, per snapshot
NO_QUEUE_POLL_SECONDS = 0.25  # while there is no queue at all, there is nothing to block on


@dataclass(frozen=True, slots=True)
class Gap:
    """Entries of ``queue`` (a queue, or a system source) after ``after`` were trimmed from
    the capped stream before the feed read them: ``missed`` of them (None: not known, for
    a position the feed did not read itself). The feed goes on from ``resumes_at``, the
    oldest entry kept."""

    queue: str
    after: str
    missed: int | None
    resumes_at: str | None


@dataclass(slots=True)
class Cursor:
    """Where a feed is in one stream: the last id passed on (or started after), and how
    many entries the stream had ever been added up to it, when known."""

    position: str
    index: int | None


def resume_position(last_event_id: str, several: bool) -> str:
    """Where to read from to resume after ``last_event_id``: right after it in one stream;
    over several, from the start of its millisecond (see the module's docstring)."""
    if not several:
        return last_event_id
    return just_before(f"{id_key(last_event_id)[0]}-0")


def fresh(labels: Sequence[str], counts: dict[str, StreamCounts]) -> dict[str, Cursor]:
    """Cursors at each stream's newest entry (``counts``; absent: no stream yet)."""
    return {
        label: Cursor(c.last, c.added) if (c := counts.get(label)) else Cursor(START, 0)
        for label in labels
    }


def resumed(
    labels: Sequence[str],
    last_event_id: str,
    several: bool,
    owners: Sequence[str] = (),
    counts: dict[str, StreamCounts] | None = None,
) -> dict[str, Cursor]:
    """Cursors that resume after ``last_event_id`` (``several``: over several streams).
    When exactly one stream holds an entry with that id (``owners``) and no other stream
    can have trimmed one (``counts``: none has lost entries up to a point past the id),
    the event came from it: that stream resumes right after it, and only the others from
    its millisecond's start, so a batch written in one millisecond is not all sent again."""
    position = resume_position(last_event_id, several)
    exact = owners[0] if len(owners) == 1 else None
    if exact is not None and _may_have_trimmed(last_event_id, exact, counts or {}):
        exact = None
    return {label: Cursor(last_event_id if label == exact else position, None) for label in labels}


def _may_have_trimmed(event_id: str, owner: str, counts: dict[str, StreamCounts]) -> bool:
    """Whether a stream but ``owner`` may once have held ``event_id`` and trimmed it."""
    return any(
        c.trimmed and (c.first is None or id_key(c.first) > id_key(event_id))
        for label, c in counts.items()
        if label != owner
    )


class Follower:
    """The merge and resume logic of a feed, without I/O: it holds a cursor per stream,
    and turns each snapshot into what to pass on."""

    def __init__(self, cursors: dict[str, Cursor]) -> None:
        self.cursors = cursors

    def positions(self) -> dict[str, str]:
        return {label: cursor.position for label, cursor in self.cursors.items()}

    def take(self, snapshot: Snapshot) -> list[StreamEvent | Gap] | None:
        """What ``snapshot`` lets the feed pass on, in order; None when it shows queues
        the feed did not know (they are added from their start: read again)."""
        new = [name for name in snapshot.names or () if name not in self.cursors]
        for name in new:
            self.cursors[name] = Cursor(START, 0)  # every event it has came after us
        if new:
            return None
        out: list[StreamEvent | Gap] = []
        for label, counts in snapshot.counts.items():
            if (gap := self._gap(label, counts)) is not None:
                out.append(gap)
        events = horizon_merge(snapshot.events, snapshot.count, snapshot.bound)
        for event in events:
            cursor = self.cursors[event.queue]
            cursor.position = event.id
            if cursor.index is not None:
                cursor.index += 1
        self._learn_indexes(snapshot, events)
        return out + events

    def _gap(self, label: str, counts: StreamCounts) -> Gap | None:
        cursor = self.cursors[label]
        if not counts.trimmed:
            return None
        if cursor.index is not None:
            missed: int | None = counts.trimmed - cursor.index
            if missed is not None and missed <= 0:
                return None  # trimming took only entries the feed had read
        elif counts.first is not None and id_key(cursor.position) >= id_key(counts.first):
            return None  # everything after the position is still kept
        else:
            missed = None  # a position the feed did not read: how far back is unknown
        cursor.index = counts.trimmed
        gap = Gap(label, cursor.position, missed, counts.first)
        if counts.first is not None:  # what came before the oldest kept is all gone
            cursor.position = max(cursor.position, just_before(counts.first), key=id_key)
        return gap

    def _learn_indexes(self, snapshot: Snapshot, passed: Sequence[StreamEvent]) -> None:
        """A stream read to its end, all of it passed on: its cursor is at its last entry,
        the ``added``-th (what ``_gap`` counts from)."""
        passed_from: dict[str, int] = {}
        for event in passed:
            passed_from[event.queue] = passed_from.get(event.queue, 0) + 1
        for label, counts in snapshot.counts.items():
            read = snapshot.events.get(label, [])
            if len(read) < snapshot.count and passed_from.get(label, 0) == len(read):
                self.cursors[label].index = counts.added


def horizon_merge(
    streams: dict[str, list[StreamEvent]], count: int, bound: tuple[int, int] | None = None
) -> list[StreamEvent]:
    """The entries of one snapshot that can be passed on, in id order across streams
    (ties by stream label): all, but for those newer than the last entry read from a
    stream whose read was cut at ``count`` (it may hold older ones still), and those past
    the snapshot's ``bound`` (streams read at different moments, on a cluster)."""
    cut = [entries[-1].sort_key for entries in streams.values() if len(entries) >= count]
    if bound is not None:
        cut.append(bound)
    horizon = min(cut) if cut else None
    merged = [
        event
        for entries in streams.values()
        for event in entries
        if horizon is None or event.sort_key <= horizon
    ]
    merged.sort(key=lambda event: (event.sort_key, event.queue))
    return merged


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which task events a feed passes on; None matches anything."""

    task_id: str | None = None
    task_type: str | None = None

    def matches(self, event: StreamEvent) -> bool:
        fields = event.fields
        return (self.task_id is None or fields.get(b"task", b"").decode() == self.task_id) and (
            self.task_type is None or fields.get(b"type", b"").decode() == self.task_type
        )


class _Feed:
    """The loop: snapshot, pass on what the follower allows, wait when nothing is new."""

    system = False  # the system streams, by source, rather than queues' streams

    def __init__(self, store: Store, last_event_id: str | None, every_queue: bool) -> None:
        self.store = store
        self.last_event_id = last_event_id
        self.every_queue = every_queue  # the set of queue names is read with the streams
        self.follower: Follower | None = None
        self.running = True

    async def start(self) -> None:
        """Fix where the feed starts: every later event reaches it."""
        if self.follower is None:
            self.follower = Follower(await self._start_cursors(await self._labels()))

    def close(self) -> None:
        """End the iteration at its next turn."""
        self.running = False

    async def _labels(self) -> list[str]:
        raise NotImplementedError

    async def _start_cursors(self, labels: list[str]) -> dict[str, Cursor]:
        if (last := self.last_event_id) is not None:
            several = self.every_queue or len(labels) > 1
            if not several:
                return resumed(labels, last, several)
            events = self.store.events
            owners = await events.holding(labels, last, self.system)
            counts = await events.counts(labels, self.system) if len(owners) == 1 else {}
            return resumed(labels, last, several, owners, counts)
        return fresh(labels, await self.store.events.counts(labels, self.system))

    async def __aiter__(self) -> AsyncIterator[StreamEvent | Gap]:
        await self.start()
        follower = self.follower
        assert follower is not None
        events = self.store.events
        while self.running:
            positions = follower.positions()
            if not positions and not self.every_queue:
                return
            snapshot = await events.snapshot(positions, COUNT, self.system, self.every_queue)
            taken = follower.take(snapshot)
            if taken is None:
                continue  # new queues: read again with them
            for item in taken:
                if isinstance(item, Gap) or self._wanted(item):
                    yield item
            if not any(snapshot.events.values()):
                await self._wait(follower.positions())

    async def _wait(self, positions: dict[str, str]) -> None:
        if positions:
            await self.store.events.wait(positions, BLOCK_MS, self.system)
        else:  # no queue at all yet: nothing to block on
            await asyncio.sleep(NO_QUEUE_POLL_SECONDS)

    def _wanted(self, event: StreamEvent) -> bool:
        return True


class EventFeed(_Feed):
    """Task events of ``queue``, or of every queue (new ones too) when None."""

    def __init__(
        self,
        store: Store,
        queue: str | None = None,
        wanted: EventFilter | None = None,
        last_event_id: str | None = None,
    ) -> None:
        super().__init__(store, last_event_id, every_queue=queue is None)
        self.queue = queue
        self.wanted = wanted or EventFilter()

    async def _labels(self) -> list[str]:
        return [self.queue] if self.queue else await self.store.events.names()

    def _wanted(self, event: StreamEvent) -> bool:
        return self.wanted.matches(event)


class SystemFeed(_Feed):
    """Named breakers' transitions and rate-limit refusals, by source (SYSTEM_SOURCES)."""

    system = True

    def __init__(
        self,
        store: Store,
        sources: Sequence[str] = SYSTEM_SOURCES,
        last_event_id: str | None = None,
    ) -> None:
        super().__init__(store, last_event_id, every_queue=False)
        self.sources = list(sources)

    async def _labels(self) -> list[str]:
        return self.sources
