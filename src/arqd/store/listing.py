"""Paging through a queue's tasks by status, with opaque cursors."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import orjson

from arqd.core.errors import InvalidTask
from arqd.core.task import Task, TaskStatus
from arqd.store.codec import text
from arqd.store.tasks import Tasks

ORDER = (
    TaskStatus.ACTIVE,
    TaskStatus.QUEUED,
    TaskStatus.SCHEDULED,
    TaskStatus.FAILED,
    TaskStatus.SUCCEEDED,
    TaskStatus.CANCELLED,
    TaskStatus.EXPIRED,
)
MAX_OFFSET = 2**31  # far past any index Redis keeps for a queue, well inside its integers


@dataclass(frozen=True, slots=True)
class Position:
    """Where a listing stopped: queue number, status number, offset in that index."""

    queue: int = 0
    status: int = 0
    offset: int = 0

    def encode(self) -> str:
        raw = orjson.dumps([self.queue, self.status, self.offset])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str | None) -> Position:
        """The position a ``next_cursor`` names; InvalidTask for anything else, crafted
        cursors with negative or huge numbers included."""
        if not cursor:
            return cls()
        try:
            q, s, o = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            if not all(type(n) is int and 0 <= n <= MAX_OFFSET for n in (q, s, o)):
                raise ValueError("out of range")
            return cls(q, s, o)
        except (ValueError, TypeError) as exc:
            raise InvalidTask(
                f"invalid cursor {cursor!r}: pass back a next_cursor unchanged"
            ) from exc


async def _ready_ids(store: Tasks, queue: str, offset: int, count: int) -> list[str]:
    """Ready ids in the order workers take them: by priority, then oldest first."""
    keys = store.keys
    prios = await store.redis.zrevrange(keys.priorities(queue), 0, -1)
    ids: list[str] = []
    for prio in prios:
        length = await store.redis.llen(keys.ready(queue, text(prio)))
        if offset >= length:
            offset -= length
            continue
        stop = -1 - offset
        start = max(-length, stop - (count - len(ids)) + 1)
        chunk = await store.redis.lrange(keys.ready(queue, text(prio)), start, stop)
        ids += [text(i) for i in reversed(chunk)]
        offset = 0
        if len(ids) >= count:
            break
    return ids


async def _ids(store: Tasks, queue: str, status: TaskStatus, offset: int, count: int) -> list[str]:
    if status is TaskStatus.QUEUED:
        return await _ready_ids(store, queue, offset, count)
    index = store.keys.index(queue, status.value)
    newest_first = status.is_finished
    stop = offset + count - 1
    raw = await store.redis.zrange(index, offset, stop, desc=newest_first)
    return [text(i) for i in raw]


async def list_tasks(
    store: Tasks,
    queues: list[str],
    statuses: tuple[TaskStatus, ...],
    task_type: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Task], str | None]:
    """Up to ``limit`` tasks and the cursor of the next page (None at the end)."""
    pos = Position.decode(cursor)
    found: list[Task] = []
    scanned = 0
    while pos.queue < len(queues) and pos.status < len(statuses):
        if len(found) >= limit or scanned >= 10 * limit:
            return found, pos.encode()
        queue, status = queues[pos.queue], statuses[pos.status]
        ids = await _ids(store, queue, status, pos.offset, limit)
        if not ids:
            nxt = pos.status + 1
            pos = Position(pos.queue + nxt // len(statuses), nxt % len(statuses), 0)
            continue
        for task in await store.get_many(queue, ids):
            pos = Position(pos.queue, pos.status, pos.offset + 1)
            scanned += 1
            if task and task.status is status and task_type in (None, task.type):
                found.append(task)
                if len(found) >= limit:
                    break
    return found, None
