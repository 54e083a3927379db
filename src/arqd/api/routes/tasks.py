"""Task routes: enqueue (one or a batch), read, list, cancel, retry; a task's logs."""

from __future__ import annotations

import re
from collections import Counter
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from starlette.responses import Response

from arqd.api.http_metrics import LONG_POLL
from arqd.api.openapi import errors, ok
from arqd.api.schemas import (
    BatchIn,
    TaskIn,
    TaskListOut,
    TaskOut,
    TaskPageOut,
    json_response,
    task_json,
)
from arqd.api.state import ApiState, api_state
from arqd.api.task_parts import TaskLogsOut
from arqd.core.errors import TaskNotFound, TaskWaitTimeout
from arqd.core.reports import line_json
from arqd.core.task import NAME_PATTERN, QUEUE_PATTERN, Task, TaskStatus

State = Annotated[ApiState, Depends(api_state)]
TaskId = Annotated[str, Path(min_length=1, max_length=256, description="The task's id")]
QueueFilter = Annotated[str | None, Query(pattern=QUEUE_PATTERN.pattern)]
WaitSeconds = Annotated[
    float, Query(ge=0, le=60, description="Seconds to wait for the task to finish")
]
InQueue = Annotated[
    str | None,
    Query(pattern=QUEUE_PATTERN.pattern, description="The task's queue, if known: one lookup"),
]
_JSON_MEDIA = re.compile(r"^application/([a-z0-9.+-]+\+)?json$")


async def require_json(request: Request) -> None:
    """Refuse a body that is not declared as JSON (415) before anything reads it as JSON."""
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if not _JSON_MEDIA.match(media):
        raise HTTPException(415, "send the body as JSON, with Content-Type: application/json")


router = APIRouter(tags=["tasks"])
_BODY_ERRORS = (400, 413, 415, 422, 503)


@router.post(
    "/tasks",
    status_code=201,
    response_model=None,
    dependencies=[Depends(require_json)],
    responses={
        **ok(201, TaskOut, "Enqueued; Location is the task's URL", location=True),
        **ok(200, TaskOut, "The task first enqueued with this idempotency key", location=True),
        **errors(*_BODY_ERRORS),
    },
)
async def enqueue_task(body: TaskIn, state: State) -> Response:
    """Enqueue one task."""
    return await enqueue_one(state, body)


async def enqueue_one(state: ApiState, body: TaskIn) -> Response:
    """``POST /tasks`` once the body is valid (also answered by the fast lane)."""
    new = body.to_new_task()
    task = await state.client.enqueue_task(new)
    if state.metrics is not None:
        state.metrics.tasks_enqueued_of(task.queue, task.type).inc()
    status = 201 if task.id == new.id else 200
    return json_response(task_json(task), status, {"Location": f"/tasks/{task.id}"})


@router.post(
    "/tasks/batch",
    status_code=201,
    response_model=None,
    dependencies=[Depends(require_json)],
    responses={**ok(201, TaskListOut, "All enqueued, in request order"), **errors(*_BODY_ERRORS)},
)
async def enqueue_batch(body: BatchIn, state: State) -> Response:
    """Enqueue up to 1000 tasks in one Redis round trip: all of them, or none on any error."""
    return await enqueue_many(state, body)


async def enqueue_many(state: ApiState, body: BatchIn) -> Response:
    """``POST /tasks/batch`` once the body is valid (also answered by the fast lane)."""
    new = body.to_new_tasks()
    created = await state.client.enqueue_many(new)
    if state.metrics is not None:
        # One increment per queue and type: one per task would cost about 2 µs each, a
        # tenth of what the API spends on a task in a batch.
        for (queue, task_type), count in Counter((t.queue, t.type) for t in created).items():
            state.metrics.tasks_enqueued_of(queue, task_type).inc(count)
    return json_response({"tasks": [task_json(task) for task in created]}, 201)


@router.get(
    "/tasks",
    response_model=None,
    responses={**ok(200, TaskPageOut, "A page of tasks"), **errors(422, 503)},
)
async def list_tasks(
    state: State,
    status: TaskStatus | None = None,
    queue: QueueFilter = None,
    task_type: Annotated[
        str | None, Query(alias="type", pattern=NAME_PATTERN.pattern, description="Task type")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Response:
    """List tasks, newest finished first, by status, queue and type; page with ``cursor``."""
    page = await state.client.list_tasks(queue, status, task_type, cursor, limit)
    return json_response(
        {"tasks": [task_json(task) for task in page.tasks], "next_cursor": page.next_cursor}
    )


@router.get(
    "/tasks/{task_id}",
    response_model=None,
    responses={**ok(200, TaskOut, "The task"), **errors(404, 422, 503)},
)
async def get_task(
    task_id: TaskId, state: State, request: Request, queue: InQueue = None, wait: WaitSeconds = 0
) -> Response:
    """A task's status, attempts, result or error, and times; with ``wait``, as soon as it
    has finished, or as it is when the wait runs out."""
    task = await state.client.get(task_id, queue)
    if task is not None and not task.status.is_finished and wait > 0:
        request.scope[LONG_POLL] = True  # timed apart from answers (see http_metrics)
        task = await _await_finish(state, task, wait)
    if task is None:
        raise TaskNotFound(task_id)
    return json_response(task_json(task))


@router.get(
    "/tasks/{task_id}/logs",
    response_model=None,
    responses={**ok(200, TaskLogsOut, "The task's log lines"), **errors(404, 422, 503)},
)
async def get_task_logs(task_id: TaskId, state: State, queue: InQueue = None) -> Response:
    """The lines each attempt of the task logged, oldest first: ``ctx.log`` and the
    ``logging`` calls of its handler (live: the task's ``log`` events on ``WS /events``)."""
    lines = await state.client.logs(task_id, queue)
    return json_response({"task_id": task_id, "lines": [line_json(line) for line in lines]})


async def _await_finish(state: ApiState, task: Task, wait: float) -> Task | None:
    try:  # the wait's blocking reads hold a connection: one of the feeds' pool
        return await state.feeds.wait(task.id, wait, task.queue)
    except TaskWaitTimeout:
        return await state.client.get(task.id, task.queue)
    except TaskNotFound:
        return None


@router.delete(
    "/tasks/{task_id}",
    response_model=None,
    responses={
        **ok(200, TaskOut, "Cancelled"),
        **ok(202, TaskOut, "Running: its worker was asked to stop it"),
        **errors(404, 409, 422, 503),
    },
)
async def cancel_task(task_id: TaskId, state: State, queue: InQueue = None) -> Response:
    """Cancel a queued or scheduled task; ask the worker running an active one to stop."""
    task = await state.client.cancel(task_id, queue)
    status = 202 if task.status is TaskStatus.ACTIVE else 200
    return json_response(task_json(task), status)


@router.post(
    "/tasks/{task_id}/retry",
    response_model=None,
    responses={**ok(200, TaskOut, "Queued again"), **errors(404, 409, 422, 503)},
)
async def retry_task(task_id: TaskId, state: State, queue: InQueue = None) -> Response:
    """Queue a failed (or cancelled) task again, with a fresh retry budget."""
    return json_response(task_json(await state.client.retry(task_id, queue)))
