"""``arqd inspect``'s table of schedules: each one's timing, next run and last run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from arqd.core.schedules import ScheduleState

if TYPE_CHECKING:
    from rich.table import Table


def schedules_table(states: list[ScheduleState], now: datetime | None = None) -> Table:
    from rich.table import Table

    now = now or datetime.now(UTC)
    table = Table(
        "schedule",
        "type",
        "queue",
        "when",
        "next run",
        "last run",
        "outcome",
        "runs",
        title="Schedules",
    )
    for state in states:
        s = state.schedule
        when = f"{s.cron} ({s.tz})" if s.cron is not None else f"every {s.every:g} s"
        following = "paused" + (f": {state.reason}" if state.reason else "")
        if state.next_run is not None:
            following = f"{_clock(state.next_run)} (in {_span(state.next_run - now)})"
        last = "-" if state.last_run is None else _clock(state.last_run)
        table.add_row(
            s.name,
            s.task_type,
            s.queue or "",
            when,
            following,
            last,
            state.last_status or "-",
            str(state.runs),
        )
    return table


def _clock(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _span(delta: timedelta) -> str:
    seconds = max(0.0, delta.total_seconds())
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
