"""The task model: what a task is, the states it moves through, and name rules."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from arqd.core.dedupe import Dedupe
from arqd.core.errors import InvalidTask
from arqd.core.ids import new_task_id
from arqd.core.reports import Progress

# The patterns are written with ^ and $ because they are also published: FastAPI's Query and
# Path patterns (pydantic's Rust regex engine) and the OpenAPI schema (ECMA-262), where $ is
# the end of the text. In Python's re, $ also matches before a final newline, so Python code
# checks names with ``fullmatch``, never ``match`` ("default\n" would name a queue no one serves).
NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")
QUEUE_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
TASK_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class TaskStatus(StrEnum):
    """Where a task is in its life. ``failed`` is the dead-letter state."""

    SCHEDULED = "scheduled"
    """Waiting for its due time: delayed at enqueue, or backing off before a retry."""
    QUEUED = "queued"
    """Ready, waiting for a worker with a free slot."""
    ACTIVE = "active"
    """Leased by a worker that is running it."""
    SUCCEEDED = "succeeded"
    """Finished; its result is kept for the result TTL."""
    FAILED = "failed"
    """Out of retries or not retryable; kept in the capped dead-letter set."""
    CANCELLED = "cancelled"
    """Cancelled before or while it ran."""
    EXPIRED = "expired"
    """Its deadline (``expires_in`` / ``expire_at``) passed before it started: never run."""

    @property
    def is_finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset(
    {TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.EXPIRED}
)


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """What went wrong in the last failed attempt."""

    type: str
    message: str
    traceback: str | None = None


@dataclass(slots=True)
class Task:
    """A snapshot of one task as stored in Redis; changing it changes nothing there.
    Not frozen: a frozen dataclass's ``__init__`` costs three times as much (2.2 against
    0.6 µs), a third of a batched enqueue's time per task (bench.core)."""

    id: str
    type: str
    queue: str
    status: TaskStatus
    payload: Any = None
    priority: int = 0
    attempts: int = 0
    max_retries: int | None = None
    timeout: float | None = None
    created_at: datetime | None = None
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: Any = None
    error: ErrorInfo | None = None
    idempotency_key: str | None = None
    result_ttl: float | None = None
    cancel_requested: bool = False
    worker: str | None = None
    trace_context: dict[str, str] = field(default_factory=dict)
    expires_at: datetime | None = None
    progress: Progress | None = None  # what its last attempt reported (ctx.progress)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: datetimes as ISO 8601 strings."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, datetime):
                data[key] = value.isoformat()
        if self.progress is not None:
            data["progress"]["updated_at"] = self.progress.updated_at.isoformat()
        return data


@dataclass(slots=True)
class NewTask:
    """Everything a producer says about a task it enqueues. Durations are in seconds."""

    type: str
    payload: Any = None
    queue: str | None = None
    priority: int = 0
    delay: float | None = None
    eta: datetime | None = None
    max_retries: int | None = None
    timeout: float | None = None
    idempotency_key: str | None = None
    result_ttl: float | None = None
    trace_context: dict[str, str] | None = None
    dedupe: Dedupe | None = None  # see arqd.core.dedupe
    id: str = field(default_factory=new_task_id)
    expires_in: float | None = None
    """Seconds from enqueue (by Redis's clock) after which it is never started."""
    expire_at: datetime | None = None
    """The time after which it is never started (timezone-aware)."""


# Names already found valid: a set lookup instead of a regex on every enqueue (names repeat).
_VALID_NAMES: set[str] = set()
_VALID_QUEUES: set[str] = set()
_KEEP = 10_000  # names remembered at most


def check_name(name: str) -> str:
    """Validate a task type name, returning it."""
    if type(name) is str and name in _VALID_NAMES:
        return name
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidTask(
            f"invalid task type {name!r}: use 1-128 characters, letters, digits and _ . : -, "
            "starting with a letter or _"
        )
    if len(_VALID_NAMES) < _KEEP:
        _VALID_NAMES.add(name)
    return name


def check_queue(queue: str) -> str:
    """Validate a queue name, returning it."""
    if type(queue) is str and queue in _VALID_QUEUES:
        return queue
    if not isinstance(queue, str) or not QUEUE_PATTERN.fullmatch(queue):
        raise InvalidTask(
            f"invalid queue name {queue!r}: use 1-64 characters, letters, digits and _ . -"
        )
    if len(_VALID_QUEUES) < _KEEP:
        _VALID_QUEUES.add(queue)
    return queue


def check_task_id(task_id: str) -> str:
    """Validate a caller-supplied task id, returning it."""
    if not isinstance(task_id, str) or not TASK_ID_PATTERN.fullmatch(task_id):
        raise InvalidTask(
            f"invalid task id {task_id!r}: use 1-128 characters, letters, digits and _ . : -"
        )
    return task_id
