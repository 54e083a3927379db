"""Tasks as arqd shows them in JSON: the API's responses and the ``arqd`` command alike.

One rendering for both, so a task printed by ``arqd enqueue`` reads exactly as
``GET /tasks/{id}`` answers it. Pure: no I/O (the API and the CLI write the bytes).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from arqd.core.reports import progress_json
from arqd.core.task import Task


def task_json(task: Task) -> dict[str, Any]:
    """A task as the JSON of the API's ``TaskOut`` (``dumps`` writes the datetimes and the
    enum). ``max_retries`` and ``timeout`` are null when the task leaves them to its type
    or to the deployment (``QUEUE_MAX_RETRIES``, ``TASK_TIMEOUT``)."""
    error = task.error
    return {
        "id": task.id,
        "type": task.type,
        "queue": task.queue,
        "status": task.status,
        "payload": task.payload,
        "priority": task.priority,
        "attempts": task.attempts,
        "max_retries": task.max_retries,
        "timeout": task.timeout,
        "created_at": task.created_at,
        "scheduled_at": task.scheduled_at,
        "started_at": task.started_at,
        "finished_at": task.finished_at,
        "result": task.result,
        "error": None
        if error is None
        else {"type": error.type, "message": error.message, "traceback": error.traceback},
        "idempotency_key": task.idempotency_key,
        "cancel_requested": task.cancel_requested,
        "worker": task.worker,
        "expires_at": task.expires_at,
        "progress": progress_json(task.progress),
    }


def _iso_ms(value: Any) -> str:
    """A time as ISO 8601 in UTC with exactly three decimals, so times sort as strings."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(data: Any, indent: bool = False) -> bytes:
    """JSON as arqd writes it: orjson, UTC times as ``2026-01-02T03:04:05.678Z``; with
    ``indent``, two spaces a level (for people).

    orjson alone drops the fraction when it is zero, and ``...05Z`` sorts after ``...05.001Z``.
    """
    option = orjson.OPT_PASSTHROUGH_DATETIME | (orjson.OPT_INDENT_2 if indent else 0)
    return orjson.dumps(data, default=_iso_ms, option=option)
