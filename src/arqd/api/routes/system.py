"""System routes: health (public), readiness, queues and workers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from arqd.api import problems
from arqd.api.openapi import errors, ok
from arqd.api.schemas import (
    HealthOut,
    QueuesOut,
    ReadyOut,
    WorkersOut,
    json_response,
    queue_json,
    worker_json,
)
from arqd.api.state import ApiState, api_state

State = Annotated[ApiState, Depends(api_state)]
router = APIRouter(tags=["system"])


@router.get(
    "/health",
    response_model=None,
    responses={
        **ok(200, HealthOut, "Healthy"),
        503: {
            "model": HealthOut,
            "description": "Redis is unreachable: status is 'degraded', counts are null",
        },
    },
)
async def health(state: State) -> Response:
    """The spec's health check; no API key needed."""
    body: dict[str, Any] = {
        "status": "ok",
        "timestamp": datetime.now(UTC),
        "uptime_seconds": round(state.uptime(), 3),
        "queue_length": None,
        "active_consumers": None,
    }
    try:
        stats, workers = await asyncio.gather(state.client.stats(), state.client.workers())
    except problems.UNAVAILABLE:
        body["status"] = "degraded"
        return json_response(body, 503, {"Retry-After": problems.RETRY_AFTER_SECONDS})
    body["queue_length"] = sum(s.queued for s in stats)
    body["active_consumers"] = len(workers)
    return json_response(body)


@router.get("/ready", response_model=None, responses={**ok(200, ReadyOut, "Ready"), **errors(503)})
async def ready(state: State) -> Response:
    """Ready to serve: Redis answers PING."""
    await state.client.ping()
    return json_response({"status": "ready"})


@router.get("/queues", response_model=None, responses={**ok(200, QueuesOut, ""), **errors(503)})
async def queues(state: State) -> Response:
    """Counts per status for every queue, the age of its oldest queued task, where it
    lives (its Redis Cluster hash slot and the server holding it), and what of it is paused."""
    client = state.client
    stats = await client.stats()
    places = await asyncio.gather(*(client.placement(s.queue) for s in stats))
    pauses = await client.queues.states([s.queue for s in stats])
    rows = zip(stats, places, pauses, strict=True)
    return json_response({"queues": [queue_json(s, p, paused) for s, p, paused in rows]})


@router.get("/workers", response_model=None, responses={**ok(200, WorkersOut, ""), **errors(503)})
async def workers(state: State) -> Response:
    """Live workers, their last heartbeat and the tasks they run now."""
    return json_response({"workers": [worker_json(w) for w in await state.client.workers()]})
