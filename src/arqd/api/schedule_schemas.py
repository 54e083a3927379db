"""The JSON of schedules over HTTP: what ``POST /schedules`` and ``PATCH`` take, and what
every schedule route answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from arqd.api.schemas import QueueName, TaskTypeName
from arqd.api.task_parts import MAX_SECONDS
from arqd.core.schedules import Schedule, ScheduleState

MisfireName = Literal["coalesce", "skip", "all"]
_NULLABLE = ("payload", "cron", "every")
_NAME = r"^[A-Za-z_][A-Za-z0-9_.:-]{0,99}$"


class SchedulePolicy(BaseModel):
    """The fields every schedule has, each optional for a change (``PATCH``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    cron: str | None = Field(
        default=None, max_length=200, description="A cron expression (5 fields), in `tz`"
    )
    every: float | None = Field(
        default=None, ge=1, le=MAX_SECONDS, allow_inf_nan=False, description="Seconds"
    )
    tz: str | None = Field(default=None, max_length=64, description="IANA zone; default UTC")
    payload: Any = Field(default=None, description="Any JSON value, each run's payload")
    priority: int | None = Field(default=None, ge=-1_000_000, le=1_000_000)
    misfire: MisfireName | None = Field(
        default=None, description="Ticks missed while no worker ran: one run, none, or each"
    )
    catch_up: int | None = Field(default=None, ge=1, le=10_000, description="misfire=all")
    late_after: float | None = Field(default=None, ge=0, le=MAX_SECONDS, allow_inf_nan=False)
    jitter: float | None = Field(default=None, ge=0, le=86_400, allow_inf_nan=False)
    overlap: bool | None = Field(
        default=None, description="False: skip a tick while the previous run is not finished"
    )

    def changes(self) -> dict[str, Any]:
        """The fields given; null means the default, but for payload, cron and every."""
        given = self.model_dump(exclude_unset=True)
        return {k: v for k, v in given.items() if v is not None or k in _NULLABLE}


class ScheduleIn(SchedulePolicy):
    """A schedule to create, or to replace by name: cron or every, not both."""

    name: str = Field(pattern=_NAME, description="Unique across queues")
    type: TaskTypeName
    queue: QueueName | None = Field(default=None, description="Default: ARQD_QUEUE")

    def to_schedule(self) -> Schedule:
        fields = self.changes()
        fields["task_type"] = fields.pop("type")
        return Schedule.from_dict(
            {k: v for k, v in fields.items() if v is not None or k == "payload"}
        )


class ScheduleOut(BaseModel):
    """A schedule, its next run and its last."""

    name: str
    type: str
    queue: str
    cron: str | None
    every: float | None
    tz: str
    payload: Any
    priority: int
    misfire: MisfireName
    catch_up: int
    late_after: float
    jitter: float
    overlap: bool
    paused: bool
    reason: str = Field(description="Why it was paused")
    next_run: datetime | None = Field(description="Null while paused")
    last_run: datetime | None
    last_task: str | None = Field(description="The id of the last run's task")
    last_status: str | None = Field(description="That task's status (null: expired, or none)")
    runs: int
    dropped: int = Field(description="Ticks the misfire policy dropped")
    skipped: int = Field(description="Runs skipped while the previous one ran (overlap)")


class SchedulesOut(BaseModel):
    """Every schedule, by name."""

    schedules: list[ScheduleOut]


class PauseIn(BaseModel):
    """Why (shown beside the schedule)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    reason: str = Field(default="", max_length=500)


def schedule_json(state: ScheduleState) -> dict[str, Any]:
    """A stored schedule as ``ScheduleOut``'s JSON."""
    definition = state.schedule.to_dict()
    definition["type"] = definition.pop("task_type")
    return {
        **definition,
        "paused": state.paused,
        "reason": state.reason,
        "next_run": state.next_run,
        "last_run": state.last_run,
        "last_task": state.last_task,
        "last_status": state.last_status,
        "runs": state.runs,
        "dropped": state.dropped,
        "skipped": state.skipped,
    }
