"""Workflows over HTTP: start one (chains of tasks and groups), read it with each
member's status. A member is a task: ``POST /tasks/{id}/retry`` retries a failed one and
re-opens its workflow."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from arqd.api.openapi import errors, ok
from arqd.api.schemas import QueueName, json_response
from arqd.api.state import ApiState, api_state
from arqd.api.workflow_schemas import WorkflowIn, WorkflowOut

State = Annotated[ApiState, Depends(api_state)]
WorkflowId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,100}$")]
router = APIRouter(tags=["workflows"])


@router.post(
    "/workflows",
    status_code=201,
    response_model=None,
    responses={**ok(201, WorkflowOut, "Created; its first step queued"), **errors(400, 422, 503)},
)
async def start_workflow(body: WorkflowIn, state: State) -> Response:
    """Create a workflow and enqueue its first step, in one Redis round trip. The same
    `id` again starts nothing more and answers the workflow as it is."""
    started = await state.client.workflows.start(body.to_workflow(), body.queue, body.id)
    headers = {"Location": f"/workflows/{started.id}"}
    return json_response(started.to_dict(), 201, headers)


@router.get(
    "/workflows/{workflow_id}",
    response_model=None,
    responses={**ok(200, WorkflowOut, "The workflow"), **errors(404, 422, 503)},
)
async def get_workflow(
    workflow_id: WorkflowId, state: State, queue: Annotated[QueueName | None, Query()] = None
) -> Response:
    """The workflow with each member's status (ended ones expire with their results)."""
    return json_response((await state.client.workflows.get(workflow_id, queue)).to_dict())


@router.post(
    "/workflows/{workflow_id}/cancel",
    response_model=None,
    responses={**ok(200, WorkflowOut, "Cancelled"), **errors(404, 409, 422, 503)},
)
async def cancel_workflow(
    workflow_id: WorkflowId, state: State, queue: Annotated[QueueName | None, Query()] = None
) -> Response:
    """Cancel a running workflow: no later step starts, members not started are cancelled,
    running ones are asked to stop. 409 for a workflow that has ended."""
    return json_response((await state.client.workflows.cancel(workflow_id, queue)).to_dict())
