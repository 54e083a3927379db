"""Workflows as producers and operators use them (``Client.workflows``): start a chain or a
group (described with ``arqd.core.workflows.chain`` and ``group``, which compose), read
one with each member's status, retry a member that failed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from arqd.core.errors import InvalidTask, InvalidTransition, WorkflowNotFound
from arqd.core.ids import new_task_id
from arqd.core.task import NewTask, Task, check_queue, check_task_id
from arqd.core.workflows import Chain, Part, Policy, WorkflowState, chain, group, started, steps

if TYPE_CHECKING:
    from arqd.client import Client


class WorkflowControl:
    """Workflows through one client (its store, its default queue)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.store = client.store.workflows

    async def start(
        self, workflow: Part, queue: str | None = None, workflow_id: str | None = None
    ) -> WorkflowState:
        """Create ``workflow`` on ``queue`` (default: the client's) and enqueue its first
        step, in one round trip. The same ``workflow_id`` again starts nothing more."""
        queue = check_queue(queue or self.client.settings.queue)
        workflow_id = check_task_id(workflow_id or new_task_id())
        if len(workflow_id) > 100:  # its members' ids add a step and a position
            raise InvalidTask("a workflow id has at most 100 characters")
        planned = steps(workflow)
        on_error = workflow.on_error if isinstance(workflow, Chain) else None
        created = await self.store.start(queue, workflow_id, planned, on_error)
        if any(m.queue not in (None, queue) for step in planned for m in step.members):
            # Members of the first step on other queues: relayed now (sent again, a start
            # relays what an interrupted one left).
            await self.client.store.relay.outbox(queue, workflow_id)
        if created:
            return started(workflow_id, queue, planned)
        return await self.get(workflow_id, queue)

    async def chain(
        self, *parts: Part, on_error: NewTask | None = None, queue: str | None = None
    ) -> WorkflowState:
        """Start ``chain(*parts)``: each step gets the one before's result."""
        return await self.start(chain(*parts, on_error=on_error), queue)

    async def group(
        self,
        members: Sequence[NewTask],
        *,
        on_failure: Policy,
        callback: NewTask | None = None,
        on_error: NewTask | None = None,
        queue: str | None = None,
    ) -> WorkflowState:
        """Start a group; ``callback`` then gets every member's result, in order."""
        made = group(members, on_failure=on_failure, callback=callback, on_error=on_error)
        return await self.start(made, queue)

    async def get(self, workflow_id: str, queue: str | None = None) -> WorkflowState:
        """The workflow with each member's status; raises WorkflowNotFound."""
        queues = [check_queue(queue)] if queue else await self.client.store.tasks.queues()
        found = await self.store.queue_of(workflow_id, queues)
        state = None if found is None else await self.store.get(found, workflow_id)
        if state is None:
            raise WorkflowNotFound(workflow_id)
        return state

    async def cancel(self, workflow_id: str, queue: str | None = None) -> WorkflowState:
        """Cancel a running workflow: no later step starts, members not started yet are
        cancelled, running ones are asked to stop. Raises WorkflowNotFound, or
        InvalidTransition for a workflow that has ended."""
        state = await self.get(workflow_id, queue)
        outcome = await self.store.cancel(state.queue, workflow_id)
        if not outcome.found:
            raise WorkflowNotFound(workflow_id)
        if outcome.ended is not None:
            raise InvalidTransition(f"workflow {workflow_id} has already ended ({outcome.ended})")
        relay = self.client.store.relay
        for queue_of_members in (await relay.outbox(state.queue, workflow_id)).noticed:
            await relay.notices(queue_of_members)
        return await self.get(workflow_id, state.queue)

    async def retry(self, member_id: str, queue: str | None = None) -> Task:
        """Queue a member that failed (or was cancelled) again: a workflow that failed on
        it runs again, and goes on (its callback once) when the member ends."""
        return await self.client.retry(member_id, queue)
