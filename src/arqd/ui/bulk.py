"""Actions on every task a filter selects: retry the failed tasks (of a type), cancel the
scheduled or queued ones, delete the finished ones (succeeded, failed, cancelled or expired).

The form says when its page was shown (``before``, ms), and only tasks already in the
state by then are acted on: a task that failed before the page was shown is retried, not
one that failed again after the retry. So a second submission of the same form (a double
click) finds nothing left to do. The selection is read first, through the client's
cursor listing; then the tasks are acted on in batches of ``BATCH``, each task by its own
script, and the count is of the tasks those scripts changed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from arqd.client import Client
from arqd.core.errors import InvalidTransition, TaskNotFound
from arqd.core.task import Task, TaskStatus

BATCH = 100
SCAN_PAGE = 500
OPERATIONS = {
    "retry": (TaskStatus.FAILED,),
    "cancel": (TaskStatus.SCHEDULED, TaskStatus.QUEUED),
    "delete": tuple(status for status in TaskStatus if status.is_finished),
}


LABELS = {
    "retry": ("Retry", "quiet"),
    "cancel": ("Cancel", "danger"),
    "delete": ("Delete", "danger"),
}


def actions_for(status: str) -> list[tuple[str, str, str]]:
    """The bulk actions a queue page offers on its ``status`` tab: (operation, button
    label, button look), in the order shown."""
    return [
        (operation, *LABELS[operation])
        for operation in ("delete", "retry", "cancel")
        if status in OPERATIONS[operation]
    ]


def eligible(task: Task, operation: str, before: datetime) -> bool:
    """Was the task in the state the operation acts on when the page was shown?"""
    if task.status not in OPERATIONS[operation]:
        return False
    since = task.created_at if operation == "cancel" else task.finished_at
    return since is not None and since <= before


async def select(
    client: Client, queue: str, status: TaskStatus, task_type: str | None
) -> list[Task]:
    """Every task of the status index (and type), read a page at a time."""
    selected: list[Task] = []
    cursor: str | None = None
    while True:
        page = await client.list_tasks(queue, status, task_type, cursor, SCAN_PAGE)
        selected += page.tasks
        if (cursor := page.next_cursor) is None:
            return selected


async def run(
    client: Client,
    queue: str,
    operation: str,
    status: TaskStatus,
    task_type: str | None,
    before_ms: int,
) -> int:
    """Act on the selection; how many tasks changed."""
    before = datetime.fromtimestamp(before_ms / 1000, UTC)
    chosen = [
        t for t in await select(client, queue, status, task_type) if eligible(t, operation, before)
    ]
    changed = 0
    for start in range(0, len(chosen), BATCH):
        batch = chosen[start : start + BATCH]
        if operation == "delete":  # one script call a batch
            changed += await client.delete(queue, status, [task.id for task in batch])
            continue
        act: Callable[[str, str | None], Awaitable[Task]] = (
            client.retry if operation == "retry" else client.cancel
        )
        done = await asyncio.gather(*(_one(act, task) for task in batch))
        changed += sum(done)
    return changed


async def _one(act: Callable[[str, str | None], Awaitable[Task]], task: Task) -> bool:
    """Act on one task; False when it moved on meanwhile (finished, retried, expired)."""
    with contextlib.suppress(InvalidTransition, TaskNotFound):
        await act(task.id, task.queue)
        return True
    return False
