"""``arqd workflow show|cancel``: a workflow's status, its current step and each step's
members with their status, as a rich table (or as JSON, as ``GET /workflows/{id}``
answers); cancel a running one. Errors end the command as ``arqd.exits`` says: an unknown
id (or a workflow that has ended, for cancel) exits 1, an unreachable Redis 3."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer

from arqd import exits
from arqd.core.task import check_queue, check_task_id
from arqd.exits import CommandErrors

if TYPE_CHECKING:
    from rich.table import Table

    from arqd.core.settings import Settings
    from arqd.core.workflows import MemberState, StepState, WorkflowState

workflow_app = typer.Typer(
    help="Workflows (chains and groups of tasks): show one, cancel one.",
    rich_markup_mode=None,
    no_args_is_help=True,
)

WorkflowId = Annotated[str, typer.Argument(help="The workflow's id")]
WorkflowQueue = Annotated[
    str | None, typer.Option("--queue", help="Its queue (default: looked for in every queue)")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print it as JSON, as the API shows it")]


@workflow_app.command("show", epilog=exits.HELP)
def show(workflow_id: WorkflowId, queue: WorkflowQueue = None, as_json: AsJson = False) -> None:
    """Show a workflow: its status, its current step, and each step's members with their
    status (exit 1 for an id no workflow has)."""
    _print(_act("show", workflow_id, queue), as_json)


@workflow_app.command("cancel", epilog=exits.HELP)
def cancel(workflow_id: WorkflowId, queue: WorkflowQueue = None, as_json: AsJson = False) -> None:
    """Cancel a running workflow: no later step starts, members not started yet are
    cancelled, running ones are asked to stop; then show it (exit 1 for an unknown id or
    a workflow that has already ended)."""
    _print(_act("cancel", workflow_id, queue), as_json)


def _act(action: str, workflow_id: str, queue: str | None) -> WorkflowState:
    settings = exits.settings()
    with CommandErrors(settings) as errors:
        check_task_id(workflow_id)
        if queue is not None:
            check_queue(queue)
        return asyncio.run(_acted(errors.connect(), settings, action, workflow_id, queue))


async def _acted(
    url: str, settings: Settings, action: str, workflow_id: str, queue: str | None
) -> WorkflowState:
    from arqd.client import REQUESTS, Client

    async with Client.connect(url, settings, REQUESTS) as client:
        workflows = client.workflows
        return await (workflows.cancel if action == "cancel" else workflows.get)(workflow_id, queue)


def _print(state: WorkflowState, as_json: bool) -> None:
    if as_json:
        from arqd.core.wire import dumps

        typer.echo(dumps(state.to_dict(), indent=True).decode())
        return
    from rich.console import Console

    Console().print(workflow_table(state))


def workflow_table(state: WorkflowState) -> Table:
    """One row a member: its step (``▶`` before the current one, while it runs), the
    step's kind and failure policy, the member's id and status; then the error callbacks
    the workflow ran."""
    from rich.table import Table

    steps = len(state.steps)
    title = (
        f"Workflow {state.id} on {state.queue}: {state.status}, step {state.step + 1} of {steps}"
    )
    table = Table("step", "kind", "member", "status", title=title)
    for k, step in enumerate(state.steps):
        current = state.status == "running" and k == state.step
        label = f"▶ {k + 1}" if current else str(k + 1)
        for i, member in enumerate(step.members):
            table.add_row(label if i == 0 else "", _kind(step) if i == 0 else "", *_row(member))
        table.add_section()
    for member in state.error_callbacks:
        table.add_row("on error", "task", *_row(member))
    return table


def _kind(step: StepState) -> str:
    return f"group of {len(step.members)}, on failure: {step.policy}" if step.is_group else "task"


def _row(member: MemberState) -> tuple[str, str]:
    return member.id, member.status
