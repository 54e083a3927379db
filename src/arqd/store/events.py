"""Reading the event streams of several queues at once, for live feeds that can resume.

Each queue has one capped stream (see ``lua/common.lua``); its entry ids are Redis stream
ids, ``<ms>-<seq>``, so they are ordered by time, and a reader resumes after the last id
it saw. A feed reads in snapshots (``Events.snapshot``): one MULTI that reads every stream
after its position together with each stream's counters (how many entries were ever
added, how many are kept), and the set of queue names, so what it sees is one moment of
every stream (``feeds`` merges them and tells what trimming took).

On a Redis Cluster a MULTI cannot span slots: each slot's streams are read in a MULTI of
their own, with the master's ``TIME``, and the set of names after them. A later entry of a
stream gets an id no older than the time its slot was read at, so the snapshot is one
moment of every stream up to its ``bound``, the oldest of those times less a millisecond
(entries past it wait for the next snapshot).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError
from redis.typing import KeyT, StreamIdT

from arqd.store.codec import text
from arqd.store.keys import Keys
from arqd.store.leases import BLOCK_CAP
from arqd.store.nodes import Node, Nodes, slot_of

START = "0-0"

# The status each event leaves its task in (a breaker's state, for a breaker's events).
# Entries hold no status of their own; an entry written with one keeps it.
EVENT_STATUS = {
    "queued": "queued",
    "scheduled": "scheduled",
    "active": "active",
    "succeeded": "succeeded",
    "failed": "failed",
    "cancelled": "cancelled",
    "expired": "expired",
    "cancel_requested": "active",
    "retrying": "scheduled",
    "returned": "queued",
    "lease_expired": "queued",
    "deleted": "deleted",
    "deduplicated": "queued",  # written with the kept task's own status: never read here
    "progress": "active",  # a running attempt's progress (field data: its JSON)
    "log": "active",  # a running attempt's new log lines (data: a JSON array)
    "breaker_opened": "open",
    "breaker_half_open": "half_open",
    "breaker_closed": "closed",
    "breaker_reset": "closed",
    # A schedule's events (no task: the field "error" holds the schedule's name and more)
    # imply the schedule's state.
    "schedule_created": "running",
    "schedule_changed": "running",
    "schedule_resumed": "running",
    "schedule_paused": "paused",
    "schedule_deleted": "deleted",
    "schedule_misfired": "running",
    "schedule_skipped": "running",
    "queue_paused": "paused",
    "queue_resumed": "running",
}
EVENT_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One entry of a queue's event stream."""

    queue: str
    id: str
    fields: dict[bytes, bytes]

    @property
    def status(self) -> str:
        """The status the event left its task in (see ``EVENT_STATUS``)."""
        written = self.fields.get(b"status")
        if written is not None:
            return written.decode()
        event = self.fields.get(b"event", b"").decode()
        return EVENT_STATUS.get(event, event)

    @property
    def sort_key(self) -> tuple[int, int]:
        return id_key(self.id)


def id_key(event_id: str) -> tuple[int, int]:
    """A stream id as numbers, for comparing ids of any streams."""
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq)


@dataclass(frozen=True, slots=True)
class StreamCounts:
    """A stream's counters at one moment (XINFO STREAM): entries ever added, entries kept
    (trimming removes the oldest), the oldest kept entry's id and the newest's."""

    added: int
    length: int
    first: str | None
    last: str

    @property
    def trimmed(self) -> int:
        """Entries removed by trimming (the stream is never deleted from otherwise)."""
        return self.added - self.length


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Streams at one moment: each stream's counters (absent: no stream yet) and its
    entries after the position asked, oldest first, at most ``count`` each; and the set
    of queue names when asked for. ``bound``: entries past it may not all have been seen
    yet (streams read at different moments, on a cluster); None when read at one moment."""

    counts: dict[str, StreamCounts]
    events: dict[str, list[StreamEvent]]
    count: int
    names: list[str] | None = None
    bound: tuple[int, int] | None = None


def just_before(event_id: str) -> str:
    """The id right before ``event_id`` in any stream: reading after it includes the event
    itself and any other stream's entry with the same id."""
    ms, _, seq = event_id.partition("-")
    if int(seq) > 0:
        return f"{ms}-{int(seq) - 1}"
    if int(ms) > 0:
        return f"{int(ms) - 1}-{2**64 - 1}"
    return START


# Events that belong to no queue: named breakers' transitions and HTTP rate-limit refusals.
# Their StreamEvent.queue is the source's name.
SYSTEM_SOURCES = ("breaker", "rate_limit")


class Events:
    """The queues' event streams, and the system streams, read from positions."""

    def __init__(self, nodes: Nodes, keys: Keys) -> None:
        self.nodes = nodes
        self.redis = nodes.redis
        self.keys = keys
        self.spread = nodes.single is None  # a cluster: streams in several slots

    def _system_key(self, source: str) -> str:
        return self.keys.breaker_events() if source == "breaker" else self.keys.rate_limit_events()

    def _keys(self, labels: Iterable[str], system: bool) -> dict[str, str]:
        key = self._system_key if system else self.keys.events
        return {label: key(label) for label in labels}

    async def names(self) -> list[str]:
        """Every queue's name (the set the enqueue fills before a queue's first event)."""
        return sorted(text(name) for name in await self.redis.smembers(self.keys.queues()))

    async def counts(self, labels: Sequence[str], system: bool = False) -> dict[str, StreamCounts]:
        """Each stream's counters (see ``StreamCounts``); a stream not yet made is absent."""
        pipe = self.redis.pipeline(transaction=not self.spread)
        for key in self._keys(labels, system).values():
            pipe.xinfo_stream(key)
        return _counts(labels, await pipe.execute(raise_on_error=False))

    async def holding(
        self, labels: Sequence[str], entry_id: str, system: bool = False
    ) -> list[str]:
        """The streams that hold an entry with the id ``entry_id``."""
        pipe = self.redis.pipeline(transaction=False)
        for key in self._keys(labels, system).values():
            pipe.xrange(key, entry_id, entry_id)
        found = await pipe.execute()
        return [label for label, entries in zip(labels, found, strict=True) if entries]

    async def snapshot(
        self, positions: Mapping[str, str], count: int, system: bool = False, names: bool = False
    ) -> Snapshot:
        """Every stream after its position, its counters and (``names``) the queue names,
        all at one moment: a MULTI of SMEMBERS, XINFO STREAM each and one XREAD (on a
        cluster, one MULTI per slot: see the module's docstring)."""
        keys = self._keys(positions, system)
        if self.spread:
            return await self._spread_snapshot(positions, keys, count, names)
        pipe = self.redis.pipeline(transaction=True)
        if names:
            pipe.smembers(self.keys.queues())
        _read(pipe, positions, keys, count)
        replies = await pipe.execute(raise_on_error=False)
        listed = sorted(text(n) for n in _raised(replies.pop(0))) if names else None
        counts, events = _decoded(positions, keys, replies)
        return Snapshot(counts, events, count, listed)

    async def _spread_snapshot(
        self, positions: Mapping[str, str], keys: dict[str, str], count: int, names: bool
    ) -> Snapshot:
        groups = _by_slot(keys)

        def read(labels: list[str]) -> Callable[[Node], Awaitable[list[Any]]]:
            async def on(node: Node) -> list[Any]:
                pipe = node.redis.pipeline(transaction=True)
                _read(pipe, {label: positions[label] for label in labels}, keys, count)
                pipe.time()
                return list(await pipe.execute(raise_on_error=False))

            return on

        replies = await asyncio.gather(
            *(self.nodes.routed(keys[labels[0]], read(labels)) for labels in groups)
        )
        listed = await self.names() if names else None  # after the streams (module doc)
        counts: dict[str, StreamCounts] = {}
        events: dict[str, list[StreamEvent]] = {}
        moments = []
        for labels, reply in zip(groups, replies, strict=True):
            seconds, micros = _raised(reply.pop())
            moments.append((int(seconds) * 1000 + int(micros) // 1000 - 1, 2**64 - 1))
            group_positions = {label: positions[label] for label in labels}
            group_counts, group_events = _decoded(group_positions, keys, reply)
            counts.update(group_counts)
            events.update(group_events)
        bound = min(moments) if len(groups) > 1 else None
        return Snapshot(counts, events, count, listed, bound)

    async def wait(self, positions: Mapping[str, str], block_ms: int, system: bool = False) -> None:
        """Return once a stream has an entry after its position, or after ``block_ms``."""
        keys = self._keys(positions, system)
        block = min(block_ms, int(BLOCK_CAP * 1000))
        await self._first_read(positions, keys, block, 1)

    async def _first_read(
        self, positions: Mapping[str, str], keys: dict[str, str], block: int, count: int
    ) -> list[Any]:
        """``XREAD BLOCK`` of the streams after their positions: the reply. On a cluster
        the slots are read at once; when none has anything, a blocking read waits on each
        slot, and all are read again once one answers (the others are dropped with their
        connections)."""
        if not self.spread:
            after: dict[KeyT, StreamIdT] = {keys[label]: p for label, p in positions.items()}
            return list(await self.redis.xread(after, block=block, count=count) or [])
        groups = _by_slot(keys)

        async def read(labels: list[str], wait: int | None) -> list[Any]:
            node = await self.nodes.of(keys[labels[0]])
            after: dict[KeyT, StreamIdT] = {keys[label]: positions[label] for label in labels}
            return list(await node.redis.xread(after, block=wait, count=count) or [])

        async def read_all() -> list[Any]:
            replies = await asyncio.gather(*(read(labels, None) for labels in groups))
            return [entry for reply in replies for entry in reply]

        if (found := await read_all()) or not block:
            return found
        running = [asyncio.ensure_future(read(labels, block)) for labels in groups]
        try:
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in running:
                task.cancel()
        if not any(task.result() for task in done):
            return []  # the wait ran out
        return await read_all()

    async def recent(self, source: str, count: int) -> list[StreamEvent]:
        """The newest ``count`` entries of a system stream (SYSTEM_SOURCES), newest first."""
        entries: Any = await self.redis.xrevrange(self._system_key(source), count=count)
        return [StreamEvent(source, text(eid), dict(fields)) for eid, fields in entries]

    async def newest(self, queues: Sequence[str]) -> dict[str, str]:
        """The id of each queue's newest event (``0-0`` for an empty stream)."""
        counts = await self.counts(queues)
        return {q: counts[q].last if q in counts else START for q in queues}

    async def read_after(
        self, positions: Mapping[str, str], block_ms: int, count: int = 200
    ) -> list[StreamEvent]:
        """Events after each queue's position, waiting up to ``block_ms`` for the first
        one; at most ``count`` per queue, in id order across queues."""
        keys = self._keys(positions, False)
        block_ms = min(block_ms, int(BLOCK_CAP * 1000))
        reply = await self._first_read(positions, keys, block_ms, count)
        labels = {key: label for label, key in keys.items()}
        events = [
            StreamEvent(labels[text(key)], text(eid), dict(fields))
            for key, entries in reply
            for eid, fields in entries
        ]
        events.sort(key=lambda event: event.sort_key)
        return events


def _by_slot(keys: Mapping[str, str]) -> list[list[str]]:
    """The labels, grouped by their stream key's slot."""
    groups: dict[int, list[str]] = {}
    for label, key in keys.items():
        groups.setdefault(slot_of(key), []).append(label)
    return list(groups.values())


def _read(pipe: Any, positions: Mapping[str, str], keys: Mapping[str, str], count: int) -> None:
    """Queue XINFO STREAM of each stream and one XREAD of them all on ``pipe``."""
    for label in positions:
        pipe.xinfo_stream(keys[label])
    if positions:
        pipe.xread({keys[label]: pos for label, pos in positions.items()}, count=count)


def _decoded(
    positions: Mapping[str, str], keys: Mapping[str, str], replies: list[Any]
) -> tuple[dict[str, StreamCounts], dict[str, list[StreamEvent]]]:
    """``_read``'s replies: each stream's counters and the entries read."""
    read = _raised(replies.pop()) if positions else None
    labels = {keys[label]: label for label in positions}
    events: dict[str, list[StreamEvent]] = {}
    for key, entries in read or []:
        label = labels[text(key)]
        events[label] = [StreamEvent(label, text(eid), dict(f)) for eid, f in entries]
    return _counts(list(positions), replies), events


def _raised(reply: Any) -> Any:
    if isinstance(reply, Exception):
        raise reply
    return reply


def _counts(labels: Sequence[str], replies: Sequence[Any]) -> dict[str, StreamCounts]:
    """XINFO STREAM replies by label; an error reply means no such stream yet."""
    counts = {}
    for label, info in zip(labels, replies, strict=True):
        if isinstance(info, ResponseError):
            continue
        first = info.get("first-entry")
        counts[label] = StreamCounts(
            added=int(info["entries-added"]),
            length=int(info["length"]),
            first=text(first[0]) if first else None,
            last=text(info["last-generated-id"]),
        )
    return counts
