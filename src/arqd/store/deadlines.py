"""A task's deadline as the enqueue script takes it (see ``codec.enqueue_args``): a
relative ``expin`` that Redis's clock turns into the stored deadline ``exp``, or ``exp``
itself. The dequeue script ends a task not started by then as ``expired``."""

from __future__ import annotations

import time

from arqd.core.errors import InvalidTask
from arqd.core.task import NewTask


def expiry_options(task: NewTask) -> list[str | bytes | int | float]:
    """When the task expires if not started by then: ``expin`` (ms after enqueue, by Redis's
    clock) or ``exp`` (ms since the epoch), or nothing. A deadline already past (by this
    machine's clock), or one that comes before the task is due, is refused: such a task
    could never run."""
    if task.expires_in is not None and task.expire_at is not None:
        raise InvalidTask("give either expires_in or expire_at, not both")
    if task.expire_at is not None:
        if task.expire_at.tzinfo is None:
            raise InvalidTask("expire_at must be timezone-aware (e.g. datetime.now(UTC))")
        at = task.expire_at.timestamp()
        if at <= time.time() or (task.eta is not None and at <= task.eta.timestamp()):
            raise InvalidTask(f"expire_at {task.expire_at.isoformat()} has passed or comes "
                              "before the task is due: it could never run")  # fmt: skip
        return ["exp", round(at * 1000)]
    if task.expires_in is None:
        return []
    if not task.expires_in > 0 or task.expires_in <= (task.delay or 0):
        raise InvalidTask(
            f"expires_in must be > 0 seconds and longer than the delay, got {task.expires_in}"
        )
    return ["expin", round(task.expires_in * 1000)]
