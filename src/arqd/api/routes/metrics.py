"""Prometheus metrics of the whole cluster, as text and as JSON."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Response

from arqd.api.state import ApiState, api_state
from arqd.observability.export import TEXT_CONTENT_TYPE, as_json, as_text, refreshed

router = APIRouter(tags=["system"])
State = Annotated[ApiState, Depends(api_state)]


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {TEXT_CONTENT_TYPE: {}}, "description": "Prometheus text"}},
)
async def metrics_text(state: State) -> Response:
    """Every metric in the Prometheus text format; queue gauges are read from Redis now."""
    if state.metrics is None:
        return Response(b"# metrics are off (ENABLE_PROMETHEUS=false)\n", 404)
    body = as_text(await refreshed(state.metrics, state.client.refresh(state.metrics)))
    return Response(body, media_type=TEXT_CONTENT_TYPE)


@router.get("/metrics.json", response_class=Response)
async def metrics_json(state: State) -> Response:
    """The same metrics as JSON: each with its type, help and samples."""
    if state.metrics is None:
        return Response(b'{"metrics": []}', 404, media_type="application/json")
    body = orjson.dumps(
        as_json(await refreshed(state.metrics, state.client.refresh(state.metrics)))
    )
    return Response(body, media_type="application/json")
