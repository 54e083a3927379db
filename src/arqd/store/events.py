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

from redis.typing import KeyT, StreamIdT

from arqd.store.codec import text
from arqd.store.store import Store

START = "0-0"
EVENT_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One entry of a queue's event stream."""

    queue: str
    id: str
    fields: dict[bytes, bytes]

    @property
    def sort_key(self) -> tuple[int, int]:
        ms, _, seq = self.id.partition("-")
        return int(ms), int(seq)


async def newest_ids(store: Store, queues: Sequence[str]) -> dict[str, str]:
    """The id of each queue's newest event (``0-0`` for an empty stream), in one round trip."""
    pipe = store.redis.pipeline(transaction=False)
    for queue in queues:
        pipe.xrevrange(store.keys.events(queue), count=1)
    replies = await pipe.execute()
    return {
        queue: text(reply[0][0]) if reply else START
        for queue, reply in zip(queues, replies, strict=True)
    }


async def read_after(
    store: Store, positions: Mapping[str, str], block_ms: int, count: int = 200
) -> list[StreamEvent]:
    """Events after each queue's position, waiting up to ``block_ms`` for the first one.

    At most ``count`` per queue; the result is in id order across queues.
    """
    if not positions:
        return []
    queue_of = {store.keys.events(queue): queue for queue in positions}
    streams: dict[KeyT, StreamIdT] = {
        store.keys.events(queue): after for queue, after in positions.items()
    }
    reply: Any = await store.redis.xread(streams, block=block_ms, count=count)
    events = [
        StreamEvent(queue_of[text(key)], text(eid), dict(fields))
        for key, entries in reply or []
        for eid, fields in entries
    ]
    events.sort(key=lambda event: event.sort_key)
    return events
