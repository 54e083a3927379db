"""Schedules over HTTP: create or replace, read, change, delete, pause, resume, trigger."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path
from starlette.responses import Response

from arqd.api.openapi import errors, ok
from arqd.api.schedule_schemas import (
    PauseIn,
    ScheduleIn,
    ScheduleOut,
    SchedulePolicy,
    SchedulesOut,
    schedule_json,
)
from arqd.api.schemas import TaskOut, json_response
from arqd.api.state import ApiState, api_state
from arqd.core.wire import task_json

State = Annotated[ApiState, Depends(api_state)]
Name = Annotated[str, Path(pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]{0,99}$")]
router = APIRouter(tags=["schedules"])


@router.post(
    "/schedules",
    response_model=None,
    responses={**ok(200, ScheduleOut, "Created, or replaced"), **errors(400, 422, 503)},
)
async def upsert_schedule(body: ScheduleIn, state: State) -> Response:
    """Create a schedule, or replace the one of that name. The same definition again
    changes nothing (its next run stays)."""
    saved = await state.client.schedules.upsert(body.to_schedule())
    return json_response(schedule_json(saved))


@router.get(
    "/schedules",
    response_model=None,
    responses={**ok(200, SchedulesOut, "Every schedule"), **errors(503)},
)
async def list_schedules(state: State) -> Response:
    """Every schedule with its next run, last run and that run's status."""
    found = await state.client.schedules.list()
    return json_response({"schedules": [schedule_json(s) for s in found]})


@router.get(
    "/schedules/{name}",
    response_model=None,
    responses={**ok(200, ScheduleOut, "The schedule"), **errors(404, 422, 503)},
)
async def get_schedule(name: Name, state: State) -> Response:
    return json_response(schedule_json(await state.client.schedules.get(name)))


@router.patch(
    "/schedules/{name}",
    response_model=None,
    responses={**ok(200, ScheduleOut, "Changed"), **errors(400, 404, 422, 503)},
)
async def change_schedule(name: Name, body: SchedulePolicy, state: State) -> Response:
    """Change the fields given; the others stay. Giving `cron` drops `every` and back."""
    changes = body.changes()
    if "cron" in changes:
        changes.setdefault("every", None)
    elif "every" in changes:
        changes["cron"] = None
    saved = await state.client.schedules.update(name, **changes)
    return json_response(schedule_json(saved))


@router.delete(
    "/schedules/{name}",
    status_code=204,
    response_model=None,
    responses={204: {"description": "Deleted"}, **errors(404, 422, 503)},
)
async def delete_schedule(name: Name, state: State) -> Response:
    """Delete the schedule; the tasks it enqueued stay."""
    await state.client.schedules.delete(name)
    return Response(status_code=204)


@router.post(
    "/schedules/{name}/pause",
    response_model=None,
    responses={**ok(200, ScheduleOut, "Paused"), **errors(400, 404, 422, 503)},
)
async def pause_schedule(
    name: Name, state: State, body: Annotated[PauseIn | None, Body()] = None
) -> Response:
    """No tick runs until resumed (ticks meanwhile are not run later)."""
    reason = body.reason if body is not None else ""
    return json_response(schedule_json(await state.client.schedules.pause(name, reason)))


@router.post(
    "/schedules/{name}/resume",
    response_model=None,
    responses={**ok(200, ScheduleOut, "Resumed"), **errors(404, 422, 503)},
)
async def resume_schedule(name: Name, state: State) -> Response:
    """Run again from the first tick after now."""
    return json_response(schedule_json(await state.client.schedules.resume(name)))


@router.post(
    "/schedules/{name}/trigger",
    status_code=201,
    response_model=None,
    responses={**ok(201, TaskOut, "The run's task"), **errors(404, 422, 503)},
)
async def trigger_schedule(name: Name, state: State) -> Response:
    """Enqueue one run now, beside the schedule's ticks."""
    task = await state.client.schedules.trigger(name)
    return json_response(task_json(task), 201, {"Location": f"/tasks/{task.id}"})
