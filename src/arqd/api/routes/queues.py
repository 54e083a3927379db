"""Queue control over HTTP: pause and resume a queue, or one task type of it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Request
from starlette.responses import Response

from arqd.api.auth import presented_key
from arqd.api.openapi import errors, ok
from arqd.api.ratelimit import http_subject
from arqd.api.schemas import PauseIn, PauseOut, json_response
from arqd.api.state import ApiState, api_state
from arqd.core.task import QUEUE_PATTERN

State = Annotated[ApiState, Depends(api_state)]
QueuePath = Annotated[str, Path(pattern=QUEUE_PATTERN.pattern, description="Queue name")]
Target = Annotated[PauseIn, Body(default_factory=PauseIn)]
router = APIRouter(tags=["queues"])
ACTOR_CHARS = 16  # "key:" and the start of the key's SHA-256: who paused, never the key


@router.post(
    "/queues/{queue}/pause",
    response_model=None,
    responses={
        **ok(200, PauseOut, "Paused: no task of it starts now"),
        **errors(400, 413, 415, 422, 503),
    },
)
async def pause_queue(queue: QueuePath, body: Target, request: Request, state: State) -> Response:
    """Pause the queue, or only its tasks of ``type``: after this answer no such task
    starts; running ones finish, delayed ones still fall due (ready, not started). Pausing
    again replaces the reason."""
    client = request.client
    by = http_subject(presented_key(request.scope), client.host if client else None)
    paused = await state.client.queues.pause(queue, body.type, body.reason, by[:ACTOR_CHARS])
    return json_response(paused.to_dict())


@router.post(
    "/queues/{queue}/resume",
    response_model=None,
    responses={
        **ok(200, PauseOut, "Running: its backlog starts at once"),
        **errors(400, 413, 415, 422, 503),
    },
)
async def resume_queue(queue: QueuePath, body: Target, state: State) -> Response:
    """Resume the queue, or its tasks of ``type``; resuming what is not paused changes
    nothing."""
    return json_response(
        (await state.client.queues.resume(queue, body.type, body.reason)).to_dict()
    )
