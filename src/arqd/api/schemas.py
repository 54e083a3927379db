"""What the API accepts and returns: pydantic models for validation and for the OpenAPI document.

Requests are validated strictly (unknown fields and wrong JSON types are refused with 422).
Responses are built as plain dicts by the ``*_json`` functions and serialized by orjson: the
models below describe them in OpenAPI, and the schemathesis test holds the two together.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from starlette.responses import Response

from arqd.api.task_parts import MAX_SECONDS, DedupeIn, ProgressOut
from arqd.client import BreakerInfo, QueueStats, WorkerInfo
from arqd.core.errors import InvalidTask
from arqd.core.ids import new_task_id, task_ids
from arqd.core.task import (
    NAME_PATTERN,
    QUEUE_PATTERN,
    NewTask,
    TaskStatus,
    check_name,
    check_queue,
)
from arqd.core.wire import dumps as dumps
from arqd.core.wire import task_json as task_json
from arqd.queue_control import MAX_REASON, PauseState

MAX_BATCH = 1000


def _checked(check: Any) -> AfterValidator:
    """Run an arqd name check, turning its InvalidTask into a field error."""

    def validate(value: str) -> str:
        try:
            return str(check(value))
        except InvalidTask as exc:
            raise ValueError(str(exc)) from None

    return AfterValidator(validate)


TaskTypeName = Annotated[
    str,
    Field(description="Task type name", json_schema_extra={"pattern": NAME_PATTERN.pattern}),
    _checked(check_name),
]
QueueName = Annotated[
    str,
    Field(description="Queue name", json_schema_extra={"pattern": QUEUE_PATTERN.pattern}),
    _checked(check_queue),
]


def _to_come(value: datetime | None) -> datetime | None:
    if value is not None and value <= datetime.now(UTC):
        raise ValueError("expire_at has passed: a task that may never start is refused")
    return value


class TaskIn(BaseModel):
    """A task to enqueue. Durations are in seconds."""

    model_config = ConfigDict(extra="forbid", strict=True)

    type: TaskTypeName
    payload: Any = Field(default=None, description="Any JSON value; the handler's argument")
    queue: QueueName | None = Field(default=None, description="Default: ARQD_QUEUE")
    priority: int = Field(default=0, ge=-1_000_000, le=1_000_000, description="Higher runs first")
    delay: float | None = Field(default=None, ge=0, le=MAX_SECONDS, allow_inf_nan=False)
    max_retries: int | None = Field(default=None, ge=0, le=1000)
    timeout: float | None = Field(default=None, gt=0, le=MAX_SECONDS, allow_inf_nan=False)
    idempotency_key: str | None = Field(
        default=None, min_length=1, max_length=256, description="A repeat returns the first task"
    )
    expires_in: float | None = Field(
        default=None, gt=0, le=MAX_SECONDS, allow_inf_nan=False,
        description="Never started after this many seconds from now (longer than any delay)",
    )  # fmt: skip
    expire_at: Annotated[AwareDatetime | None, AfterValidator(_to_come)] = Field(
        default=None, strict=False, description="Never started after this time (ISO 8601)"
    )
    dedupe: DedupeIn | None = None

    @field_validator("dedupe")
    @classmethod
    def _no_delay_to_debounce(cls, dedupe: DedupeIn | None, info: ValidationInfo) -> Any:
        if dedupe and dedupe.mode == "debounce" and info.data.get("delay"):
            raise ValueError("a debounced task is due a window after its last enqueue: no delay")
        return dedupe

    def to_new_task(self, task_id: str | None = None) -> NewTask:
        return NewTask(
            type=self.type,
            payload=self.payload,
            queue=self.queue,
            priority=self.priority,
            delay=self.delay,
            max_retries=self.max_retries,
            timeout=self.timeout,
            idempotency_key=self.idempotency_key,
            dedupe=self.dedupe.to_dedupe() if self.dedupe else None,
            id=task_id or new_task_id(),
            expires_in=self.expires_in,
            expire_at=self.expire_at,
        )


class BatchIn(BaseModel):
    """Up to 1000 tasks, enqueued in one Redis round trip; all or none."""

    model_config = ConfigDict(extra="forbid", strict=True)

    tasks: list[TaskIn] = Field(min_length=1, max_length=MAX_BATCH)

    def to_new_tasks(self) -> list[NewTask]:
        return [
            task.to_new_task(task_id)
            for task, task_id in zip(self.tasks, task_ids(len(self.tasks)), strict=True)
        ]


class ErrorOut(BaseModel):
    """What went wrong in the last failed attempt."""

    type: str
    message: str
    traceback: str | None


class TaskOut(BaseModel):
    """A task as stored. Times are ISO 8601 (UTC); durations in seconds."""

    id: str
    type: str
    queue: str
    status: TaskStatus
    payload: Any
    priority: int
    attempts: int
    max_retries: int | None
    timeout: float | None
    created_at: datetime | None
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    result: Any
    error: ErrorOut | None
    idempotency_key: str | None
    cancel_requested: bool
    worker: str | None
    expires_at: datetime | None = Field(description="Its deadline: not started by then, expired")
    progress: ProgressOut | None


class TaskListOut(BaseModel):
    """A list of tasks (the batch answer)."""

    tasks: list[TaskOut]


class TaskPageOut(BaseModel):
    """One page of tasks; pass ``next_cursor`` back as ``cursor`` (null: the last page)."""

    tasks: list[TaskOut]
    next_cursor: str | None


class HeldOut(BaseModel):
    """Queued tasks that wait for a limit, not for a worker, by what holds them."""

    rate_limit: int = Field(description="Put off by a rate limit to the slot reserved for them")
    concurrency: int = Field(description="Held while their type's concurrency limit is reached")
    breaker: int = Field(description="Held while their type's circuit breaker is open")
    paused: int = Field(description="Held while their type is paused")


class PausedTypeOut(BaseModel):
    """A task type paused on its own: its tasks are held, the queue's others run."""

    type: str
    reason: str
    paused_at: datetime
    paused_by: str | None


class PauseOut(BaseModel):
    """What of a queue is paused: the whole queue (``paused``, with its reason, time and
    who paused it; nulls when it runs) and task types on their own."""

    queue: str
    paused: bool
    reason: str | None
    paused_at: datetime | None
    paused_by: str | None
    paused_types: list[PausedTypeOut]


class PauseIn(BaseModel):
    """What to pause or resume: the whole queue, or one task type of it (``type``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    type: TaskTypeName | None = Field(default=None, description="Only this task type")
    reason: str = Field(default="", max_length=MAX_REASON, description="Shown to operators")


class QueueOut(BaseModel):
    """Counts per status (``queued`` includes the held ones), the held ones by reason, and
    how long the oldest queued task (ready or held) has waited."""

    queue: str
    queued: int
    scheduled: int
    active: int
    succeeded: int
    failed: int
    cancelled: int
    expired: int = Field(description="Not started before their deadline (kept as cancelled ones)")
    held: HeldOut
    oldest_queued_age_seconds: float | None
    paused: bool = Field(description="The whole queue is paused (see GET /queues for why)")
    reason: str | None = None  # GET /queues: why it is paused
    paused_at: datetime | None = None  # GET /queues
    paused_by: str | None = None  # GET /queues
    paused_types: list[PausedTypeOut] | None = None  # GET /queues: types paused on their own
    slot: int | None = None  # its keys' Redis Cluster hash slot (GET /queues)
    node: str | None = None  # the server holding it, host:port (GET /queues)


class QueuesOut(BaseModel):
    """Every known queue."""

    queues: list[QueueOut]


class WorkerOut(BaseModel):
    """A live worker: its last heartbeat and the tasks it runs now."""

    id: str
    last_heartbeat: datetime
    host: str | None
    pid: int | None
    queues: list[str]
    concurrency: int | None
    current_tasks: list[str]
    processed: int | None


class WorkersOut(BaseModel):
    """Workers whose heartbeat is recent."""

    workers: list[WorkerOut]


class BreakerOut(BaseModel):
    """A circuit breaker; task types' breakers are named ``task:QUEUE:TYPE``."""

    name: str
    state: Literal["closed", "open", "half_open"]
    state_value: int = Field(
        ge=0, le=2, description="0 closed, 1 open, 2 half-open: arq_circuit_breaker_state"
    )
    failures: int = Field(description="Failures in a row")
    open_until: datetime | None = Field(description="While open: when a trial may pass")
    trial_running: bool = Field(description="Half-open: the one trial call is running")


class BreakersOut(BaseModel):
    """Every breaker that has recorded a failure."""

    breakers: list[BreakerOut]


class HealthOut(BaseModel):
    """The spec's health JSON. Counts are null when Redis cannot be asked."""

    status: Literal["ok", "degraded"]
    timestamp: datetime
    uptime_seconds: float
    queue_length: int | None
    active_consumers: int | None


class ReadyOut(BaseModel):
    """Ready means Redis answers."""

    status: Literal["ready"]


class FieldErrorOut(BaseModel):
    """One invalid field: its path (``body.tasks.0.type``), what is wrong, a machine code."""

    field: str
    message: str
    type: str


class ProblemOut(BaseModel):
    """An RFC 9457 problem: every error response has this shape."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldErrorOut] | None = None


def queue_json(
    stats: QueueStats, placement: tuple[int, str] | None = None, pause: PauseState | None = None
) -> dict[str, Any]:
    """A queue's counts; with its ``placement`` (``Client.placement``), its slot and node;
    with its ``pause`` (``Client.queues.paused``), what is paused and why."""
    where = {} if placement is None else {"slot": placement[0], "node": placement[1]}
    if pause is not None:
        where |= pause.to_dict()
    return {
        "queue": stats.queue,
        "queued": stats.queued,
        "scheduled": stats.scheduled,
        "active": stats.active,
        "succeeded": stats.succeeded,
        "failed": stats.failed,
        "cancelled": stats.cancelled,
        "expired": stats.expired,
        "held": stats.held,
        "oldest_queued_age_seconds": stats.oldest_age,
        "paused": stats.paused,
    } | where


def worker_json(worker: WorkerInfo) -> dict[str, Any]:
    details = worker.details
    return {
        "id": worker.id,
        "last_heartbeat": worker.last_seen,
        "host": details.get("host"),
        "pid": details.get("pid"),
        "queues": list(details.get("queues", [])),
        "concurrency": details.get("concurrency"),
        "current_tasks": list(details.get("running", [])),
        "processed": details.get("processed"),
    }


def breaker_json(info: BreakerInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "state": info.state.name.lower(),
        "state_value": int(info.state),
        "failures": info.failures,
        "open_until": info.open_until,
        "trial_running": info.trial,
    }


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response serialized by ``dumps``."""
    return Response(dumps(data), status, headers=headers, media_type="application/json")
