"""A queue's counts as the stats script reads them (``lua/stats.lua``), decoded once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class QueueStats:
    """The stats script's answer: counts per status (finished tasks past their TTL are not
    counted; ``queued`` includes held ones, by reason in ``held``), the oldest queued
    task's age (s), and whether the whole queue is paused (``Client.queues`` says why)."""

    queue: str
    queued: int
    scheduled: int
    active: int
    succeeded: int
    failed: int
    cancelled: int
    oldest_age: float | None
    held_by_rate_limit: int = 0
    held_by_concurrency: int = 0
    held_by_breaker: int = 0
    held_by_pause: int = 0
    expired: int = 0
    paused: bool = False

    @property
    def held(self) -> dict[str, int]:
        """Queued tasks held: by a ``rate_limit``, a ``concurrency`` limit, a ``breaker``,
        or a pause of their type (``paused``)."""
        by = (
            self.held_by_rate_limit,
            self.held_by_concurrency,
            self.held_by_breaker,
            self.held_by_pause,
        )
        return dict(zip(("rate_limit", "concurrency", "breaker", "paused"), by, strict=True))


def decode_stats(queue: str, reply: Sequence[Any]) -> QueueStats:
    q, sch, act, ok, failed, cxl, oldest, throttled, by_cc, by_cb, by_pause, exp, paused = reply
    age = None if oldest < 0 else oldest / 1000
    return QueueStats(
        queue, q, sch, act, ok, failed, cxl, age, throttled, by_cc, by_cb, by_pause, exp,
        paused == 1,
    )  # fmt: skip
