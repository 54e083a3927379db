"""Circuit breakers over HTTP: list them, and close one by hand."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from starlette.responses import Response

from arqd.api.openapi import errors, ok
from arqd.api.schemas import BreakerOut, BreakersOut, breaker_json, json_response
from arqd.api.state import ApiState, api_state
from arqd.core.task import NAME_PATTERN, QUEUE_PATTERN

State = Annotated[ApiState, Depends(api_state)]
router = APIRouter(tags=["breakers"])

_NAMED = NAME_PATTERN.pattern.strip("^$")
_TASK_TYPE = f"task:{QUEUE_PATTERN.pattern.strip('^$')}:{_NAMED}"
BreakerName = Annotated[
    str,
    Path(
        pattern=f"^({_TASK_TYPE}|{_NAMED})$",
        description="A named breaker, or a task type's: `task:QUEUE:TYPE`",
    ),
]


@router.get(
    "/breakers",
    response_model=None,
    responses={**ok(200, BreakersOut, "Every breaker that has recorded a failure"), **errors(503)},
)
async def list_breakers(state: State) -> Response:
    """Task types' and named breakers: state (as text and as 0/1/2), failures in a row,
    and while open, when a trial may pass."""
    return json_response({"breakers": [breaker_json(b) for b in await state.client.breakers()]})


@router.post(
    "/breakers/{name}/reset",
    response_model=None,
    responses={**ok(200, BreakerOut, "Closed"), **errors(404, 422, 503)},
)
async def reset_breaker(name: BreakerName, state: State) -> Response:
    """Close a breaker now; a task type's releases the tasks it held back."""
    return json_response(breaker_json(await state.client.reset_breaker(name)))
