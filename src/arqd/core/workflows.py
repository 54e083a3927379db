"""Workflows as producers describe them: chains of steps, each step one task or a group,
pure (no I/O). ``chain`` and ``group`` compose; ``steps`` flattens what they built into
the list of steps the store creates in one script call (``arqd.store.workflows``).

    chain(a, b, c)                           a, then b with a's result, then c with b's
    group([a, b], on_failure="fail")         a and b at once
    group([a, b], callback=c, on_failure=…)  c with [a's result, b's result], in order
    chain(a, group([b, c], on_failure=…), d) b and c each with a's result, d with both

A task of a later step with no payload (None) is given the previous step's result: the
result itself after one task, the list of results in order after a group. A group's
failure policy is chosen explicitly (``Policy``). A member runs on the workflow's queue
unless it names another (``NewTask.queue``): steps then travel through outboxes that a
relay carries across queues (``arqd.store.relay``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from arqd.core.errors import InvalidTask
from arqd.core.task import NewTask, check_queue

Policy = Literal["fail", "continue", "ignore"]
"""What a group's members that did not succeed (failed for good, cancelled, expired) do:
``fail`` fails the workflow once the group ended (its error callback runs with their
positions; retrying one re-opens it); ``continue`` goes on, the next step seeing each of
them as ``{"failed": status, "error": ...}`` in its place; ``ignore`` goes on with
``null`` in their places."""

POLICIES: tuple[str, ...] = get_args(Policy)
MAX_MEMBERS = 100_000  # members of one workflow (every step together)
# Options a member may not carry: a member is ready when its step starts and has an id the
# workflow gives it.
_REFUSED = ("delay", "eta", "idempotency_key", "dedupe", "expire_at", "trace_context")


@dataclass(frozen=True, slots=True)
class Group:
    """Tasks run at once; the step ends when every one has ended."""

    members: tuple[NewTask, ...]
    on_failure: Policy


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a workflow: its tasks, whether it is a group, its failure policy."""

    members: tuple[NewTask, ...]
    is_group: bool
    policy: Policy


@dataclass(frozen=True, slots=True)
class Chain:
    """Steps run one after the other; ``on_error`` runs when the workflow fails."""

    steps: tuple[NewTask | Group, ...]
    on_error: NewTask | None = None


Part = NewTask | Group | Chain


def group(
    members: Sequence[NewTask],
    *,
    on_failure: Policy,
    callback: NewTask | None = None,
    on_error: NewTask | None = None,
) -> Group | Chain:
    """Run ``members`` at once; ``callback`` (if any) then gets their results in order."""
    if not members:
        raise InvalidTask("a group needs at least one member")
    if on_failure not in POLICIES:
        raise InvalidTask(f"on_failure must be one of {', '.join(POLICIES)}, not {on_failure!r}")
    made = Group(tuple(members), on_failure)
    if callback is None and on_error is None:
        return made
    return Chain((made, *([callback] if callback else [])), on_error)


def chain(*parts: Part, on_error: NewTask | None = None) -> Chain:
    """Run ``parts`` one after the other, each given the one before's result; chains
    inside are flattened (one error callback: the outermost given, else an inner one)."""
    steps: list[NewTask | Group] = []
    for part in parts:
        if isinstance(part, Chain):
            steps.extend(part.steps)
            on_error = on_error or part.on_error
        else:
            steps.append(part)
    if not steps:
        raise InvalidTask("a chain needs at least one step")
    return Chain(tuple(steps), on_error)


def steps(workflow: Part) -> list[Step]:
    """The steps of ``workflow``, every member checked."""
    parts = workflow.steps if isinstance(workflow, Chain) else (workflow,)
    out = []
    for part in parts:
        if isinstance(part, Group):
            out.append(Step(part.members, True, part.on_failure))
        else:
            out.append(Step((part,), False, "fail"))
    for step in out:
        for member in step.members:
            check_member(member)
    if sum(len(step.members) for step in out) > MAX_MEMBERS:
        raise InvalidTask(f"a workflow has at most {MAX_MEMBERS:,} members")
    return out


def check_member(task: NewTask) -> None:
    """Refuse what a member cannot be: on a queue of invalid name, or with an option of
    its own that a workflow decides (when it starts, its id)."""
    if not isinstance(task, NewTask):
        raise InvalidTask(f"a workflow's members are NewTask objects, not {type(task).__name__}")
    if task.queue is not None:
        check_queue(task.queue)
    for name in _REFUSED:
        if getattr(task, name) is not None:
            raise InvalidTask(f"a workflow's member cannot have {name} (task {task.type!r})")


@dataclass(frozen=True, slots=True)
class MemberState:
    """One member task: its id and status (``pending``: its step has not started), and
    its queue when it runs on another than its workflow's."""

    id: str
    status: str
    queue: str | None = None


@dataclass(frozen=True, slots=True)
class StepState:
    """One step as it is now."""

    is_group: bool
    policy: str
    members: list[MemberState]


@dataclass(frozen=True, slots=True)
class WorkflowState:
    """A workflow as it is now: ``status`` running, succeeded, failed or cancelled; the
    current step (0-based); its steps and the error callbacks it ran (one per failure)."""

    id: str
    queue: str
    status: str
    step: int
    steps: list[StepState]
    error_callbacks: list[MemberState]

    def to_dict(self) -> dict[str, object]:
        def members(found: list[MemberState]) -> list[dict[str, str]]:
            return [
                {"id": m.id, "status": m.status, **({"queue": m.queue} if m.queue else {})}
                for m in found
            ]

        return {
            "id": self.id,
            "queue": self.queue,
            "status": self.status,
            "step": self.step,
            "steps": [
                {"group": s.is_group, "policy": s.policy, "members": members(s.members)}
                for s in self.steps
            ],
            "error_callbacks": members(self.error_callbacks),
        }


def started(workflow_id: str, queue: str, planned: Sequence[Step]) -> WorkflowState:
    """A workflow just created: its first step queued, the others pending (member ids:
    ``<workflow id>.<step>.<position>``)."""
    found = []
    for k, step in enumerate(planned):
        status = "queued" if k == 0 else "pending"
        members = [
            MemberState(f"{workflow_id}.{k}.{i}", status, None if m.queue == queue else m.queue)
            for i, m in enumerate(step.members)
        ]
        found.append(StepState(step.is_group, step.policy, members))
    return WorkflowState(workflow_id, queue, "running", 0, found, [])
