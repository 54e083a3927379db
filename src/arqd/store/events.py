"""Reading the event streams of several queues at once, for live feeds that can resume.

Each queue has one capped stream (see ``lua/common.lua``); its entry ids are Redis stream
ids, ``<ms>-<seq>``, so they are ordered by time, and a reader resumes after the last id
it saw. A feed reads in snapshots (``Events.snapshot``): one MULTI that reads every stream
after its position together with each stream's counters (how many entries were ever
added, how many are kept), and the set of queue names, so what it sees is one moment of
every stream (``feeds`` merges them and tells what trimming took).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from redis.typing import KeyT, StreamIdT

from arqd.store.codec import text
from arqd.store.keys import Keys
from arqd.store.leases import BLOCK_CAP

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
    "cancel_requested": "active",
    "retrying": "scheduled",
    "returned": "queued",
    "lease_expired": "queued",
    "breaker_opened": "open",
    "breaker_half_open": "half_open",
    "breaker_closed": "closed",
    "breaker_reset": "closed",
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
    of queue names when asked for."""

    counts: dict[str, StreamCounts]
    events: dict[str, list[StreamEvent]]
    count: int
    names: list[str] | None = None


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

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

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
        pipe = self.redis.pipeline(transaction=True)
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
        all at one moment: a MULTI of SMEMBERS, XINFO STREAM each and one XREAD."""
        keys = self._keys(positions, system)
        pipe = self.redis.pipeline(transaction=True)
        if names:
            pipe.smembers(self.keys.queues())
        for key in keys.values():
            pipe.xinfo_stream(key)
        after: dict[KeyT, StreamIdT] = {keys[label]: pos for label, pos in positions.items()}
        if after:
            pipe.xread(after, count=count)
        replies = await pipe.execute(raise_on_error=False)
        listed = sorted(text(n) for n in _raised(replies.pop(0))) if names else None
        read = _raised(replies.pop()) if after else None
        labels = {key: label for label, key in keys.items()}
        events: dict[str, list[StreamEvent]] = {}
        for key, entries in read or []:
            label = labels[text(key)]
            events[label] = [StreamEvent(label, text(eid), dict(f)) for eid, f in entries]
        return Snapshot(_counts(list(positions), replies), events, count, listed)

    async def wait(self, positions: Mapping[str, str], block_ms: int, system: bool = False) -> None:
        """Return once a stream has an entry after its position, or after ``block_ms``."""
        keys = self._keys(positions, system)
        after: dict[KeyT, StreamIdT] = {keys[label]: pos for label, pos in positions.items()}
        await self.redis.xread(after, block=min(block_ms, int(BLOCK_CAP * 1000)), count=1)

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
        after: dict[KeyT, StreamIdT] = {keys[label]: pos for label, pos in positions.items()}
        block_ms = min(block_ms, int(BLOCK_CAP * 1000))
        reply: Any = await self.redis.xread(after, block=block_ms, count=count)
        labels = {key: label for label, key in keys.items()}
        events = [
            StreamEvent(labels[text(key)], text(eid), dict(fields))
            for key, entries in reply or []
            for eid, fields in entries
        ]
        events.sort(key=lambda event: event.sort_key)
        return events


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
