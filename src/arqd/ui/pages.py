"""The dashboard's pages: overview, a queue, a task, workers, breakers, the audit trail.
Each reads through the client, as the API does."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from arqd.core.errors import TaskNotFound
from arqd.core.reports import LogLine
from arqd.core.task import QUEUE_PATTERN, TASK_ID_PATTERN, Task, TaskStatus
from arqd.resilience.breaker import State
from arqd.ui.bulk import actions_for
from arqd.ui.charts import SPARK_MINUTES, day_chart, sparkline
from arqd.ui.reports import progress_view
from arqd.ui.search import Found, search
from arqd.ui.timeline import timeline, trace_id
from arqd.ui.views import breakers_context, workers_context
from arqd.ui.web import Ui, Viewer, page

PAGE_SIZE = 50
MAX_SEARCH = 200  # characters of search text
LOG_TAIL = 200  # a task page's newest log lines (GET /tasks/{id}/logs has them all)
STATUSES = [status.value for status in TaskStatus]


@page
async def overview(request: Request, ui: Ui, viewer: Viewer) -> Response:
    client = ui.client
    stats, workers, breakers, topology, memory = await asyncio.gather(
        client.stats(), client.workers(), client.breakers(), client.topology(), client.memory()
    )
    seen = await asyncio.gather(*(client.throughput(s.queue, SPARK_MINUTES) for s in stats))
    masters = {}
    if topology.kind == "cluster":  # each queue's master (from the slot table: no I/O)
        masters = {s.queue: (await client.placement(s.queue))[1] for s in stats}
    context = {
        "stats": sorted(stats, key=lambda s: s.queue),
        "slots": {s.queue: client.slot(s.queue) for s in stats},
        "masters": masters,
        "topology": topology,
        "memory": memory,
        "sparks": {chart.queue: sparkline(chart) for chart in seen},
        "workers": workers,
        "open_breakers": [b for b in breakers if b.state is not State.CLOSED],
        "live": urlencode({"charts": "spark"}),
    }
    return ui.render(request, viewer, "overview.html", context)


@page
async def queue(request: Request, ui: Ui, viewer: Viewer) -> Response:
    name = request.path_params["queue"]
    if not QUEUE_PATTERN.fullmatch(name):
        return ui.refuse(request, viewer, 404, f"No queue is named {name!r}.")
    query = request.query_params
    status = query.get("status") or None
    if status is not None and status not in STATUSES:
        return ui.refuse(request, viewer, 400, f"Unknown status {status!r}.")
    task_type, needle = query.get("type") or None, query.get("q", "").strip()[:MAX_SEARCH]
    (stats,), found, seen, paused = await asyncio.gather(
        ui.client.stats(name),
        _tasks(ui, name, status, task_type, query.get("cursor"), needle),
        ui.client.throughput(name),
        ui.client.queues.paused(name),
    )
    filters = {k: v for k, v in (("status", status), ("type", task_type), ("q", needle)) if v}
    following = (
        f"?{urlencode({**filters, 'cursor': found.next_cursor})}" if found.next_cursor else None
    )
    context = {
        "queue": name,
        "stats": stats,
        "pause": paused,
        "chart": day_chart(seen),
        "bulk_actions": actions_for(status) if status else [],
        "statuses": STATUSES,
        "status": status,
        "task_type": task_type or "",
        "needle": needle,
        "scanned": found.scanned,
        "tasks": found.tasks,
        "next_page": following,
        "first_page": f"?{urlencode(filters)}" if query.get("cursor") else None,
        "live": urlencode({"queue": name, "charts": "day"}),
        "shown_at": int(time.time() * 1000),
    }
    return ui.render(request, viewer, "queue.html", context)


async def _tasks(
    ui: Ui, name: str, status: str | None, task_type: str | None, cursor: str | None, needle: str
) -> Found:
    """A page of the queue's tasks: those holding ``needle``, when given (see search)."""
    if needle:
        return await search(ui.client, name, status, needle, task_type=task_type, cursor=cursor)
    page = await ui.client.list_tasks(name, status, task_type, cursor, PAGE_SIZE)
    return Found(page.tasks, page.next_cursor, len(page.tasks))


@page
async def find(request: Request, ui: Ui, viewer: Viewer) -> Response:
    """Jump to a task by id, or by its idempotency key on a queue (a queue page's boxes)."""
    query = request.query_params
    if key := query.get("idempotency_key", "").strip():
        queue = query.get("queue", "")
        if not QUEUE_PATTERN.fullmatch(queue):
            return ui.refuse(request, viewer, 404, f"No queue is named {queue!r}.")
        found = await ui.client.by_idempotency_key(queue, key)
        if found is None:
            message = f"No task on {queue} holds the idempotency key {key!r} (or it expired)."
            return ui.refuse(request, viewer, 404, message)
        return RedirectResponse(f"/ui/tasks/{found.id}", 303)
    task_id = query.get("id", "").strip()
    if not TASK_ID_PATTERN.fullmatch(task_id):
        return ui.refuse(request, viewer, 404, f"{task_id!r} is not a task id.")
    return RedirectResponse(f"/ui/tasks/{task_id}", 303)


@page
async def task(request: Request, ui: Ui, viewer: Viewer) -> Response:
    found = await ui.client.get(request.path_params["task_id"])
    if found is None:
        return ui.refuse(request, viewer, 404, "No such task: it never existed, or it expired.")
    return await render_task(request, ui, viewer, found, {})


async def render_task(
    request: Request,
    ui: Ui,
    viewer: Viewer,
    found: Task,
    copy: dict[str, Any],
    status: int = 200,
) -> Response:
    """The task page; ``copy`` holds the copy form's values and errors when it is shown
    again after a refused enqueue."""
    history, lines = await asyncio.gather(ui.client.task_history(found), _log_tail(ui, found))
    traced = trace_id(found.trace_context)
    context = {
        "task": found,
        "progress": progress_view(found.progress),
        "log_lines": lines,
        "log_tail": LOG_TAIL,
        "steps": timeline(history),
        "trace_id": traced,
        "trace_link": ui.state.settings.trace_link(traced) if traced else None,
        "copy": copy,
        "live": urlencode({"queue": found.queue, "task": found.id}),
    }
    return ui.render(request, viewer, "task.html", context, status)


async def _log_tail(ui: Ui, task: Task) -> list[LogLine]:
    """The task's newest ``LOG_TAIL`` lines (none if it expired since it was read)."""
    try:
        return (await ui.client.logs(task.id, task.queue))[-LOG_TAIL:]
    except TaskNotFound:
        return []


@page
async def workers(request: Request, ui: Ui, viewer: Viewer) -> Response:
    context = {**await workers_context(ui.client, {}), "live": urlencode({"view": "workers"})}
    return ui.render(request, viewer, "workers.html", context)


@page
async def breakers(request: Request, ui: Ui, viewer: Viewer) -> Response:
    context = {**await breakers_context(ui.client, {}), "live": urlencode({"view": "breakers"})}
    return ui.render(request, viewer, "breakers.html", context)


@page
async def audit(request: Request, ui: Ui, viewer: Viewer) -> Response:
    return ui.render(request, viewer, "audit.html", {"entries": await ui.client.audit_log(200)})
