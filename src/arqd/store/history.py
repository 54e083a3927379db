"""How many tasks of a queue succeeded and failed in each minute of the last day: its
throughput, as the finish script counts it.

``finish.lua`` adds each batch's answers to one hash per queue and hour (``Keys.throughput``;
under the queue's hash tag, so in its slot): fields ``<minute>:s`` and ``<minute>:f``
(the minute of the hour, 0-59) count the tasks that succeeded and those that failed for
good (to the dead-letter set; an attempt to be retried is no failure). Redis's clock
decides the minute. A hash expires about 25 hours after its first count, so the last
24 hours are always whole, and the buckets cost at most 25 small hashes per queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from arqd.store.codec import text
from arqd.store.keys import Keys
from arqd.store.nodes import Nodes

MINUTE_MS = 60_000
KEPT_MINUTES = 24 * 60  # a day: the hashes live longer (finish.lua), so it is always whole


@dataclass(frozen=True, slots=True)
class Throughput:
    """Tasks of ``queue`` that succeeded and that failed in each minute from ``start``
    (UTC) on, oldest first; the last minute is the one Redis's clock is in (so far)."""

    queue: str
    start: datetime
    succeeded: tuple[int, ...]
    failed: tuple[int, ...]

    @property
    def total_succeeded(self) -> int:
        return sum(self.succeeded)

    @property
    def total_failed(self) -> int:
        return sum(self.failed)

    @property
    def end(self) -> datetime:
        """When the last minute ends."""
        return datetime.fromtimestamp(self.start.timestamp() + 60 * len(self.succeeded), UTC)


class History:
    """Reads the per-minute buckets the finish script keeps."""

    def __init__(self, nodes: Nodes, keys: Keys) -> None:
        self.nodes = nodes
        self.keys = keys

    async def throughput(self, queue: str, minutes: int) -> Throughput:
        """The last ``minutes`` minutes of ``queue`` (at most ``KEPT_MINUTES``), the current
        one last. Two round trips: Redis's time, then every hour's hash at once."""
        prefix = self.keys.queue(queue)
        seconds, micros = await self.nodes.call(prefix, "TIME")
        now = (int(seconds) * 1_000_000 + int(micros)) // 1000 // MINUTE_MS
        first = now - min(minutes, KEPT_MINUTES) + 1
        hours = range(first // 60, now // 60 + 1)
        replies = await asyncio.gather(
            *(self.nodes.call(prefix, "HGETALL", self.keys.throughput(queue, h)) for h in hours)
        )
        counts = {h: _fields(reply) for h, reply in zip(hours, replies, strict=True)}
        return buckets(queue, first, now, counts)


def buckets(
    queue: str, first: int, last: int, counts: Mapping[int, Mapping[str, int]]
) -> Throughput:
    """The minutes ``first`` to ``last`` (minutes since the epoch) from each hour's fields."""
    succeeded, failed = [], []
    for minute in range(first, last + 1):
        fields = counts.get(minute // 60, {})
        succeeded.append(fields.get(f"{minute % 60}:s", 0))
        failed.append(fields.get(f"{minute % 60}:f", 0))
    start = datetime.fromtimestamp(first * 60, UTC)
    return Throughput(queue, start, tuple(succeeded), tuple(failed))


def _fields(reply: Sequence[Any] | Mapping[Any, Any]) -> dict[str, int]:
    """A hash's fields as HGETALL gave them: a flat list (RESP2) or a map."""
    pairs = (
        reply.items() if isinstance(reply, Mapping) else zip(reply[::2], reply[1::2], strict=True)
    )
    return {text(field): int(value) for field, value in pairs}
