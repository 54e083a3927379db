"""The JSON of workflows over HTTP: what ``POST /workflows`` takes and what the workflow
routes answer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from arqd.api.schemas import QueueName, TaskTypeName
from arqd.api.task_parts import MAX_SECONDS
from arqd.core.task import NewTask
from arqd.core.workflows import MAX_MEMBERS, Chain, Group, Part, chain


class MemberIn(BaseModel):
    """A task of a workflow. It runs on the workflow's queue unless it names another;
    without a payload, a task of a later step gets the previous step's result (a
    group's: the list, in order)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    type: TaskTypeName
    payload: Any = Field(default=None, description="Any JSON value; null: the previous result")
    priority: int = Field(default=0, ge=-1_000_000, le=1_000_000)
    max_retries: int | None = Field(default=None, ge=0, le=1000)
    timeout: float | None = Field(default=None, gt=0, le=MAX_SECONDS, allow_inf_nan=False)
    result_ttl: float | None = Field(default=None, gt=0, le=MAX_SECONDS, allow_inf_nan=False)
    expires_in: float | None = Field(default=None, gt=0, le=MAX_SECONDS, allow_inf_nan=False)
    queue: QueueName | None = Field(default=None, description="Default: the workflow's queue")

    def to_new_task(self) -> NewTask:
        return NewTask(
            type=self.type,
            queue=self.queue,
            payload=self.payload,
            priority=self.priority,
            max_retries=self.max_retries,
            timeout=self.timeout,
            result_ttl=self.result_ttl,
            expires_in=self.expires_in,
        )


class StepIn(BaseModel):
    """One step: a task, or a group with its failure policy (chosen explicitly)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    task: MemberIn | None = None
    group: list[MemberIn] | None = Field(default=None, min_length=1, max_length=MAX_MEMBERS)
    on_failure: Literal["fail", "continue", "ignore"] | None = Field(
        default=None,
        description="A group's members that did not succeed: fail the workflow (its "
        "on_error task runs), continue (the next step sees them as failed), or ignore (null)",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> StepIn:
        if (self.task is None) == (self.group is None):
            raise ValueError("a step is either a task or a group")
        if self.group is not None and self.on_failure is None:
            raise ValueError("a group's on_failure must be given: fail, continue or ignore")
        if self.task is not None and self.on_failure is not None:
            raise ValueError("on_failure is a group's; a failed task fails the workflow")
        return self

    def to_part(self) -> NewTask | Group:
        if self.task is not None:
            return self.task.to_new_task()
        assert self.group is not None
        assert self.on_failure is not None
        return Group(tuple(m.to_new_task() for m in self.group), self.on_failure)


class WorkflowIn(BaseModel):
    """A chain of steps, each given the one before's result; created in one round trip."""

    model_config = ConfigDict(extra="forbid", strict=True)

    steps: list[StepIn] = Field(min_length=1, max_length=1000)
    on_error: MemberIn | None = Field(
        default=None, description="Runs when the workflow fails, with the failed positions"
    )
    queue: QueueName | None = Field(default=None, description="Default: ARQD_QUEUE")
    id: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_.:-]{1,100}$", description="Default: a random id"
    )

    def to_workflow(self) -> Chain:
        parts: list[Part] = [step.to_part() for step in self.steps]
        on_error = self.on_error.to_new_task() if self.on_error else None
        return chain(*parts, on_error=on_error)


class MemberOut(BaseModel):
    id: str
    status: str = Field(description="A task status, or pending (its step has not started)")
    queue: str | None = Field(default=None, description="Its queue, if not the workflow's")


class StepOut(BaseModel):
    group: bool
    policy: str
    members: list[MemberOut]


class WorkflowOut(BaseModel):
    """A workflow with each member's status."""

    id: str
    queue: str
    status: Literal["running", "succeeded", "failed", "cancelled"]
    step: int = Field(description="The current step, from 0")
    steps: list[StepOut]
    error_callbacks: list[MemberOut] = Field(description="One per time the workflow failed")
