"""The dashboard's schedules: the list (next run, last run and its outcome), one
schedule's page with its edit form, and the actions pause, resume, trigger and edit
(each a POST through ``web.action``: CSRF, read-only keys refused, audited)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from arqd.core.errors import InvalidSchedule
from arqd.core.schedules import Misfire, ScheduleState
from arqd.ui.web import Ui, Viewer, action, page

MISFIRES = [m.value for m in Misfire]


@page
async def schedules(request: Request, ui: Ui, viewer: Viewer) -> Response:
    found = await ui.client.schedules.list()
    return ui.render(request, viewer, "schedules.html", {"schedules": found})


@page
async def schedule(request: Request, ui: Ui, viewer: Viewer) -> Response:
    state = await ui.client.schedules.get(request.path_params["name"])
    return _page(request, ui, viewer, state, _form_of(state), {})


def _page(
    request: Request,
    ui: Ui,
    viewer: Viewer,
    state: ScheduleState,
    form: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    context = {"s": state, "form": form, "errors": errors, "misfires": MISFIRES}
    return ui.render(request, viewer, "schedule.html", context, status)


def _form_of(state: ScheduleState) -> dict[str, str]:
    s = state.schedule
    return {
        "cron": s.cron or "",
        "every": "" if s.every is None else f"{s.every:g}",
        "tz": s.tz,
        "payload": orjson.dumps(s.payload).decode(),
        "priority": str(s.priority),
        "misfire": s.misfire.value,
        "jitter": f"{s.jitter:g}",
        "overlap": "on" if s.overlap else "",
    }


async def _edit(request: Request, ui: Ui, viewer: Viewer, form: dict[str, str]) -> Response:
    """Change the schedule as the form says; a value refused comes back beside the form."""
    name = request.path_params["name"]
    state = await ui.client.schedules.get(name)
    changes, errors = _changes(form)
    if not errors:
        try:
            await ui.client.schedules.update(name, **changes)
        except InvalidSchedule as exc:
            errors["form"] = str(exc)
        else:
            await ui.client.audit(viewer.actor, "edit_schedule", f"schedule:{name}", 1)
            return RedirectResponse(f"/ui/schedules/{name}", 303)
    return _page(request, ui, viewer, state, form, errors, 422)


def _changes(form: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    errors: dict[str, str] = {}
    changes: dict[str, Any] = {
        "cron": form.get("cron", "").strip() or None,
        "tz": form.get("tz", "").strip() or "UTC",
        "misfire": form.get("misfire", "coalesce"),
        "overlap": form.get("overlap") == "on",
    }
    for field, kind in (("every", float), ("priority", int), ("jitter", float)):
        raw = form.get(field, "").strip()
        try:
            changes[field] = kind(raw) if raw else None
        except ValueError:
            errors[field] = f"not a number: {raw!r}"
    changes["priority"] = changes["priority"] or 0
    changes["jitter"] = changes["jitter"] or 0.0
    try:
        changes["payload"] = orjson.loads(form.get("payload", "") or "null")
    except orjson.JSONDecodeError as exc:
        errors["payload"] = f"not valid JSON: {exc}"
    return changes, errors


async def _pause(request: Request, ui: Ui, viewer: Viewer, form: dict[str, str]) -> Response:
    name = request.path_params["name"]
    await ui.client.schedules.pause(name, form.get("reason", "").strip()[:500])
    await ui.client.audit(viewer.actor, "pause_schedule", f"schedule:{name}", 1)
    return RedirectResponse(form.get("back") or "/ui/schedules", 303)


async def _resume(request: Request, ui: Ui, viewer: Viewer, form: dict[str, str]) -> Response:
    name = request.path_params["name"]
    await ui.client.schedules.resume(name)
    await ui.client.audit(viewer.actor, "resume_schedule", f"schedule:{name}", 1)
    return RedirectResponse(form.get("back") or "/ui/schedules", 303)


async def _trigger(request: Request, ui: Ui, viewer: Viewer, form: dict[str, str]) -> Response:
    name = request.path_params["name"]
    task = await ui.client.schedules.trigger(name)
    await ui.client.audit(viewer.actor, "trigger_schedule", f"task:{task.queue}:{task.id}", 1)
    return RedirectResponse(f"/ui/tasks/{task.id}", 303)


edit = action(_edit)
pause = action(_pause)
resume = action(_resume)
trigger = action(_trigger)
