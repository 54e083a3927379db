"""The dashboard's workflow page: the workflow's steps as a tree, each member with its
status, kept live over ``WS /ui/events?view=workflow&id=...`` (the tree is rendered again
after task events, see ``views``). A member is a task: its page retries or cancels it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from arqd.client import Client
from arqd.ui.web import Ui, Viewer, page

SHOWN = 200  # members listed per step; the rest are counted by status


async def workflow_context(client: Client, params: Mapping[str, str]) -> dict[str, Any]:
    state = await client.workflows.get(params.get("id", ""), params.get("queue") or None)
    counts = [Counter(m.status for m in step.members) for step in state.steps]
    return {"wf": state, "counts": counts, "shown": SHOWN}


@page
async def workflow(request: Request, ui: Ui, viewer: Viewer) -> Response:
    params = {"id": request.path_params["workflow_id"]}
    context = await workflow_context(ui.client, params)
    context["live"] = urlencode({"view": "workflow", **params})
    return ui.render(request, viewer, "workflow.html", context)
