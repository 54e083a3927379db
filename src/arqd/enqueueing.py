"""How a task to enqueue becomes the ``Task`` its enqueue made: its queue checked and the
caller's trace context attached (``prepare``), the task as the script writes it
(``snapshot``), and Redis's answer applied to it (``settle``)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime

from arqd.core.settings import Settings
from arqd.core.task import NewTask, Task, TaskStatus, check_queue
from arqd.observability import tracing
from arqd.store.codec import Enqueued


def prepare(tasks: Sequence[NewTask], settings: Settings) -> list[str]:
    """Check the tasks' queues and give them the caller's trace context; their queues."""
    queues = [check_queue(task.queue or settings.queue) for task in tasks]
    if carrier := tracing.inject_current():
        for task in tasks:
            if task.trace_context is None:
                task.trace_context = carrier
    return queues


def snapshot(task: NewTask, queue: str, defaults: tuple[int, float]) -> Task:
    """The task as its enqueue writes it, before Redis's answer (``settle``): with its
    effective max retries and timeout (its own, else ``defaults``, its type's)."""
    delayed = bool(task.delay and round(task.delay * 1000)) or task.eta is not None
    delayed = delayed or (task.dedupe is not None and task.dedupe.mode == "debounce")
    return Task(
        id=task.id,
        type=task.type,
        queue=queue,
        status=TaskStatus.SCHEDULED if delayed else TaskStatus.QUEUED,
        payload=task.payload,
        priority=task.priority,
        max_retries=defaults[0] if task.max_retries is None else task.max_retries,
        timeout=defaults[1] if task.timeout is None else task.timeout,
        idempotency_key=task.idempotency_key,
        result_ttl=task.result_ttl,
        trace_context=task.trace_context or {},
        expires_at=task.expire_at,
    )


@functools.lru_cache(maxsize=64)  # concurrent enqueues share a millisecond
def created_at(at_ms: int) -> datetime:
    return datetime.fromtimestamp(at_ms / 1000, UTC)


def settle(made: Task, task: NewTask, outcome: Enqueued, created: datetime) -> Task:
    """``made`` as Redis holds it: created at Redis's time, and queued, not scheduled,
    when its eta had passed by Redis's clock. ``made`` is set in place: nobody holds it
    yet, and a copy of every task of a batch would cost a tenth of the batch's time."""
    made.created_at = created
    if task.expires_in is not None:
        made.expires_at = created_at(outcome.at_ms + round(task.expires_in * 1000))
    if task.eta is not None and task.eta.timestamp() * 1000 <= outcome.at_ms:
        made.status = TaskStatus.QUEUED
    return made
