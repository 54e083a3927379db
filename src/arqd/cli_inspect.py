"""What ``arqd inspect`` shows: the queues with their counts, held tasks and pauses, the
live workers and the schedules, as rich tables."""

from __future__ import annotations

import time

from rich.table import Table

from arqd.cli_schedules import schedules_table
from arqd.client import Client, QueueStats, WorkerInfo
from arqd.queue_control import PauseState


async def inspect_tables(client: Client) -> Table:
    """The queues, the live workers and the schedules, read now."""
    grid = Table.grid(padding=1)
    stats = await client.stats()
    places = [await client.placement(s.queue) for s in stats]
    pauses = await client.queues.states([s.queue for s in stats])
    grid.add_row(queues_table(stats, places, pauses))
    grid.add_row(workers_table(await client.workers()))
    grid.add_row(schedules_table(await client.schedules.list()))
    return grid


def queues_table(
    stats: list[QueueStats],
    places: list[tuple[int, str]],
    pauses: list[PauseState] | None = None,
) -> Table:
    """One row a queue: counts by status, held tasks by reason, the oldest queued task's
    age, where it lives, and what of it is paused (with the reason)."""
    columns = ("queued", "scheduled", "active", "succeeded", "failed", "cancelled", "expired")
    held = "held: rate limit / concurrency / breaker / paused"
    table = Table(
        "queue", *columns, held, "oldest queued (s)", "slot", "node", "paused", title="Queues"
    )
    for i, (s, (slot, node)) in enumerate(zip(stats, places, strict=True)):
        age = "-" if s.oldest_age is None else f"{s.oldest_age:.1f}"
        counts = (s.queued, s.scheduled, s.active, s.succeeded, s.failed, s.cancelled, s.expired)
        by_reason = " / ".join(str(n) for n in s.held.values())
        paused = paused_text(pauses[i]) if pauses else ("yes" if s.paused else "-")
        table.add_row(s.queue, *(str(n) for n in counts), by_reason, age, str(slot), node, paused)
    return table


def paused_text(state: PauseState) -> str:
    """``yes (reason)`` for a paused queue, then each paused type with its reason; ``-``."""
    parts = []
    if state.whole is not None:
        parts.append(f"yes ({state.whole.reason})" if state.whole.reason else "yes")
    for pause in state.types:
        parts.append(
            f"{pause.task_type} ({pause.reason})" if pause.reason else str(pause.task_type)
        )
    return ", ".join(parts) or "-"


def workers_table(workers: list[WorkerInfo]) -> Table:
    table = Table(
        "worker", "queues", "running", "processed", "last seen (s ago)", title="Live workers"
    )
    for w in workers:
        d = w.details
        table.add_row(
            w.id,
            ",".join(d.get("queues", [])),
            str(len(d.get("running", []))),
            str(d.get("processed", 0)),
            f"{time.time() - w.last_seen.timestamp():.1f}",
        )
    return table
