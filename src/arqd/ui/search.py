"""Substring search over tasks' payloads and errors, within a queue's status index.

The dashboard pages through the index with the client's cursor listing (a bounded read
each: ``SCAN_PAGE`` tasks) and keeps the tasks whose payload (as JSON) or error (type,
message and traceback) holds the text, ignoring case. It stops when it has a page of
matches or has spent ``BUDGET_SECONDS``, and hands back the listing cursor where it
stopped, so following the cursors to the end yields exactly what one full scan would.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson

from arqd.client import Client
from arqd.core.task import Task

SCAN_PAGE = 100  # tasks read per listing call: a few milliseconds of Redis time
BUDGET_SECONDS = 1.0  # one search request stops after this long, with a cursor to go on


@dataclass(frozen=True, slots=True)
class Found:
    """Matches in order, the cursor to go on from (None: the index is done), and how
    many tasks were looked at."""

    tasks: list[Task]
    next_cursor: str | None
    scanned: int


def matches(task: Task, needle: str) -> bool:
    """Does the task's payload or error hold ``needle`` (case ignored)?"""
    wanted = needle.casefold()
    payload = orjson.dumps(task.payload, default=str).decode()
    if wanted in payload.casefold():
        return True
    error = task.error
    if error is None:
        return False
    told = f"{error.type}: {error.message}\n{error.traceback or ''}"
    return wanted in told.casefold()


async def search(
    client: Client,
    queue: str,
    status: str | None,
    needle: str,
    *,
    task_type: str | None = None,
    cursor: str | None = None,
    want: int = 50,
) -> Found:
    """Up to about ``want`` matches from ``cursor`` on, within the time budget."""
    found: list[Task] = []
    scanned = 0
    deadline = time.monotonic() + BUDGET_SECONDS
    while True:
        page = await client.list_tasks(queue, status, task_type, cursor, SCAN_PAGE)
        scanned += len(page.tasks)
        found += [task for task in page.tasks if matches(task, needle)]
        cursor = page.next_cursor
        if cursor is None or len(found) >= want or time.monotonic() >= deadline:
            return Found(found, cursor, scanned)
