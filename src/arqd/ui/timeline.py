"""A task's attempt timeline, built from its events, and its trace id."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from arqd.feeds import StreamEvent


@dataclass(frozen=True, slots=True)
class Step:
    """One event of a task, and how long the task stayed in what it led to."""

    event: str
    status: str
    attempt: int
    at: datetime
    lasted: float | None  # seconds until the next step; None for the last one
    error: str | None


REPORTS = (b"progress", b"log")  # what a running attempt says: not steps of its life


def timeline(events: Sequence[StreamEvent]) -> list[Step]:
    """The task's steps, oldest first (events in stream order; progress and log lines
    are shown apart)."""
    events = [event for event in events if event.fields.get(b"event") not in REPORTS]
    times = [_time(event.id) for event in events]
    steps = []
    for number, event in enumerate(events):
        following = times[number + 1] if number + 1 < len(times) else None
        fields = event.fields
        steps.append(
            Step(
                event=fields.get(b"event", b"").decode(),
                status=event.status,
                attempt=int(fields.get(b"attempt", b"0")),
                at=times[number],
                lasted=(following - times[number]).total_seconds() if following else None,
                error=_error(fields.get(b"error")),
            )
        )
    return steps


def trace_id(context: Mapping[str, str]) -> str | None:
    """The trace id of a W3C ``traceparent`` (``00-TRACE-SPAN-FLAGS``), if well formed."""
    parts = context.get("traceparent", "").split("-")
    if len(parts) == 4 and len(parts[1]) == 32:
        return parts[1]
    return None


def _time(event_id: str) -> datetime:
    return datetime.fromtimestamp(int(event_id.partition("-")[0]) / 1000, UTC)


def _error(raw: bytes | None) -> str | None:
    if not raw:
        return None
    error = orjson.loads(raw)
    return f"{error.get('type')}: {error.get('message')}"
