"""Reading the event streams of several queues at once, for live feeds that can resume.

Each queue has one capped stream (see ``lua/common.lua``); its entry ids are Redis stream
ids, ``<ms>-<seq>``, so they are ordered by time, and a reader resumes after the last id
it saw. Reads across queues come back merged in id order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
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
        ms, _, seq = self.id.partition("-")
        return int(ms), int(seq)


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

    async def newest(self, queues: Sequence[str]) -> dict[str, str]:
        """The id of each queue's newest event (``0-0`` for an empty stream), in one
        round trip."""
        return await self._newest({queue: self.keys.events(queue) for queue in queues})

    async def read_after(
        self, positions: Mapping[str, str], block_ms: int, count: int = 200
    ) -> list[StreamEvent]:
        """Events after each queue's position, waiting up to ``block_ms`` for the first
        one; at most ``count`` per queue, in id order across queues."""
        streams = {self.keys.events(q): (q, after) for q, after in positions.items()}
        return await self._read(streams, block_ms, count)

    def _system_key(self, source: str) -> str:
        return self.keys.breaker_events() if source == "breaker" else self.keys.rate_limit_events()

    async def newest_system(self, sources: Sequence[str]) -> dict[str, str]:
        """The id of each system stream's newest entry (``0-0`` for an empty one)."""
        return await self._newest({source: self._system_key(source) for source in sources})

    async def read_system_after(
        self, positions: Mapping[str, str], block_ms: int, count: int = 200
    ) -> list[StreamEvent]:
        """``read_after`` for the system streams, by source."""
        streams = {self._system_key(src): (src, after) for src, after in positions.items()}
        return await self._read(streams, block_ms, count)

    async def _newest(self, keys: Mapping[str, str]) -> dict[str, str]:
        pipe = self.redis.pipeline(transaction=False)
        for key in keys.values():
            pipe.xrevrange(key, count=1)
        replies = await pipe.execute()
        return {
            label: text(reply[0][0]) if reply else START
            for label, reply in zip(keys, replies, strict=True)
        }

    async def _read(
        self, streams: Mapping[str, tuple[str, str]], block_ms: int, count: int
    ) -> list[StreamEvent]:
        """``streams``: key -> (the events' label, the id to read after)."""
        if not streams:
            return []
        after: dict[KeyT, StreamIdT] = {key: position for key, (_, position) in streams.items()}
        block_ms = min(block_ms, int(BLOCK_CAP * 1000))
        reply: Any = await self.redis.xread(after, block=block_ms, count=count)
        events = [
            StreamEvent(streams[text(key)][0], text(eid), dict(fields))
            for key, entries in reply or []
            for eid, fields in entries
        ]
        events.sort(key=lambda event: event.sort_key)
        return events
