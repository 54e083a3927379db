"""The dashboard's actions: every one a POST carrying the session's CSRF token (see
``web.action``), refused to read-only keys, and written to the audit trail."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from arqd.core.errors import InvalidTask, TaskNotFound
from arqd.core.task import NewTask, TaskStatus, check_queue
from arqd.ui import bulk
from arqd.ui.pages import render_task
from arqd.ui.web import Ui, Viewer, action

PRIORITY_LIMIT = 1_000_000


def _back(url: str) -> Response:
    return RedirectResponse(url, 303)


async def _retry(request: Request, ui: Ui, viewer: Viewer, form: dict[str, str]) -> Response:
    task = await ui.client.retry(request.path_params["task_id"])
    await ui.client.audit(viewer.actor, "retry", f"task:{task.queue}:{task.id}", 1)
    return _back(f"/ui/tasks/{task.id}")


async def _run_now(request: Request, ui: Ui, viewer: Viewer, form: dict[str, str]) -> Response:
    task = await ui.client.run_now(request.path_params["task_id"])
    await ui.client.audit(viewer.actor, "run_now", f"task:{task.queue}:{task.id}", 1)
    return _back(f"/ui/tasks/{task.id}")


async def _cancel(request: Request, ui: Ui, viewer: Viewer, form: dict[str, str]) -> Response:
    task = await ui.client.cancel(request.path_params["task_id"])
    await ui.client.audit(viewer.actor, "cancel", f"task:{task.queue}:{task.id}", 1)
    return _back(f"/ui/tasks/{task.id}")


async def _copy(request: Request, ui: Ui, viewer: Viewer, form: dict[str, str]) -> Response:
    """Enqueue a copy of the task with the payload and priority of the form; a value the
    enqueue refuses comes back on the task page, next to its field."""
    original = await ui.client.get(request.path_params["task_id"])
    if original is None:
        raise TaskNotFound(request.path_params["task_id"])
    values, errors = _copy_fields(form)
    if not errors:
        try:
            copy = await ui.client.enqueue_task(_new_copy(original.type, original.queue, values))
        except InvalidTask as exc:
            errors["payload"] = str(exc)
        else:
            await ui.client.audit(viewer.actor, "enqueue_copy", f"task:{copy.queue}:{copy.id}", 1)
            return _back(f"/ui/tasks/{copy.id}")
    shown = {
        "payload": form.get("payload", ""),
        "priority": form.get("priority", ""),
        **{f"{name}_error": message for name, message in errors.items()},
    }
    return await render_task(request, ui, viewer, original, shown, 422)


def _copy_fields(form: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    try:
        values["payload"] = orjson.loads(form.get("payload", "") or "null")
    except orjson.JSONDecodeError as exc:
        errors["payload"] = f"not valid JSON: {exc}"
    try:
        values["priority"] = int(form.get("priority", "") or "0")
    except ValueError:
        values["priority"] = None
    if values["priority"] is None or not -PRIORITY_LIMIT <= values["priority"] <= PRIORITY_LIMIT:
        errors["priority"] = "a whole number from -1000000 to 1000000, e.g. 0 or 10"
    return values, errors


def _new_copy(task_type: str, queue: str, values: dict[str, Any]) -> NewTask:
    return NewTask(task_type, values["payload"], queue=queue, priority=values["priority"])


async def _reset(request: Request, ui: Ui, viewer: Viewer, form: dict[str, str]) -> Response:
    name = request.path_params["name"]
    await ui.client.reset_breaker(name)
    await ui.client.audit(viewer.actor, "reset_breaker", f"breaker:{name}", 1)
    return _back("/ui/breakers")


async def _pause(request: Request, ui: Ui, viewer: Viewer, form: dict[str, str]) -> Response:
    """Pause the queue, or one task type of it (the form's ``type``), with a reason."""
    queue, task_type = request.path_params["queue"], form.get("type") or None
    await ui.client.queues.pause(queue, task_type, form.get("reason", ""), viewer.actor)
    await ui.client.audit(viewer.actor, "pause", _control_target(queue, task_type), 1)
    return _back(f"/ui/queues/{queue}")


async def _resume(request: Request, ui: Ui, viewer: Viewer, form: dict[str, str]) -> Response:
    queue, task_type = request.path_params["queue"], form.get("type") or None
    await ui.client.queues.resume(queue, task_type, form.get("reason", ""))
    await ui.client.audit(viewer.actor, "resume", _control_target(queue, task_type), 1)
    return _back(f"/ui/queues/{queue}")


def _control_target(queue: str, task_type: str | None) -> str:
    return f"queue:{queue}" + (f":{task_type}" if task_type else "")


async def _bulk(request: Request, ui: Ui, viewer: Viewer, form: dict[str, str]) -> Response:
    """Retry, cancel or delete every task of a queue's status index, of a type if given,
    that was in that state when the page was shown (see ``bulk``)."""
    queue, operation = request.path_params["queue"], form.get("operation", "")
    status = form.get("status", "")
    if operation not in bulk.OPERATIONS or status not in bulk.OPERATIONS[operation]:
        raise InvalidTask(f"cannot {operation or 'act on'} the {status or 'unnamed'} tasks")
    if not form.get("before", "").isdigit():
        raise InvalidTask("the form has no time it was shown at: reload the page")
    task_type = form.get("type") or None
    count = await bulk.run(
        ui.client, check_queue(queue), operation, TaskStatus(status), task_type, int(form["before"])
    )
    target = f"queue:{queue}:{status}" + (f":{task_type}" if task_type else "")
    await ui.client.audit(viewer.actor, f"bulk_{operation}", target, count)
    context = {"queue": queue, "operation": operation, "status": status}
    return ui.render(request, viewer, "bulk.html", {**context, "type": task_type, "count": count})


retry = action(_retry)
run_now = action(_run_now)
cancel = action(_cancel)
copy = action(_copy)
reset_breaker = action(_reset)
bulk_action = action(_bulk)
pause = action(_pause)
resume = action(_resume)
