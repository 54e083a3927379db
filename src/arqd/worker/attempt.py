"""Running one attempt of a task and classifying how it ended."""

from __future__ import annotations

import asyncio
import threading
import traceback
from concurrent.futures import Executor
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import orjson
from pydantic import ValidationError

from arqd.core.backoff import RetryPolicy
from arqd.core.errors import NonRetryable, Retry
from arqd.store.codec import Lease, error_json
from arqd.store.store import Answer
from arqd.worker.registry import TaskType


class StopReason(Enum):
    """Why the worker itself interrupted an attempt."""

    CANCEL = "cancel"  # a client cancelled the task
    LOST = "lost"  # the lease was lost: another attempt replaced this one
    SHUTDOWN = "shutdown"  # the grace period ran out: hand the task back


@dataclass
class TaskContext:
    """What a handler may know about its attempt (declare a ``ctx`` parameter to get it)."""

    task_id: str
    task_type: str
    queue: str
    attempt: int
    max_retries: int
    cancel_event: threading.Event = field(default_factory=threading.Event)
    stop_reason: StopReason | None = None

    @property
    def cancel_requested(self) -> bool:
        """True once the task was cancelled; long handlers should check it and return."""
        return self.cancel_event.is_set()


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything needed to run one attempt."""

    lease: Lease
    task_type: TaskType | None
    policy: RetryPolicy
    timeout: float
    context: TaskContext


def _error(exc: BaseException, kind: str | None = None) -> bytes:
    tb = "".join(traceback.format_exception(exc))
    return error_json(kind or type(exc).__name__, str(exc) or repr(exc), tb)


def _failed(plan: Plan, value: bytes) -> Answer:
    return Answer(plan.lease, "failed", value)


def _retry_or_fail(plan: Plan, exc: BaseException, value: bytes) -> Answer:
    if not plan.policy.allows(plan.lease.attempt):
        return _failed(plan, value)
    delay = exc.delay if isinstance(exc, Retry) and exc.delay is not None else None
    if delay is None:
        delay = plan.policy.delay(plan.lease.attempt)
    return Answer(plan.lease, "retry", value, round(delay * 1000))


async def _call(plan: Plan, task_type: TaskType, executor: Executor) -> Any:
    payload = orjson.loads(plan.lease.payload)
    if task_type.payload_adapter is not None:
        payload = task_type.payload_adapter.validate_python(payload)
    kwargs = {"ctx": plan.context} if task_type.wants_context else {}
    if task_type.is_async:
        return await task_type.handler(payload, **kwargs)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, lambda: task_type.handler(payload, **kwargs))


async def run_attempt(plan: Plan, executor: Executor) -> Answer | None:
    """Run the handler once; the answer for the finish script, or None if the lease was lost."""
    task_type = plan.task_type
    if task_type is None:
        message = f"unknown task type {plan.lease.type!r}: no worker on this queue declares it"
        return _failed(plan, error_json("UnknownTaskType", message, None))
    try:
        async with asyncio.timeout(plan.timeout):
            result = await _call(plan, task_type, executor)
    except asyncio.CancelledError:
        return _interrupted(plan)
    except TimeoutError as exc:
        limit = f"attempt exceeded its timeout of {plan.timeout:g} s"
        return _retry_or_fail(plan, exc, error_json("TaskTimeout", limit, None))
    except (ValidationError, orjson.JSONDecodeError) as exc:
        return _failed(plan, _error(exc, "InvalidPayload"))
    except NonRetryable as exc:
        return _failed(plan, _error(exc))
    except Exception as exc:
        return _retry_or_fail(plan, exc, _error(exc))
    if plan.context.cancel_requested:
        return Answer(plan.lease, "cancelled")
    try:
        return Answer(plan.lease, "succeeded", orjson.dumps(result))
    except orjson.JSONEncodeError as exc:
        return _failed(plan, _error(exc, "InvalidResult"))


def _interrupted(plan: Plan) -> Answer | None:
    reason = plan.context.stop_reason
    if reason is StopReason.CANCEL:
        return Answer(plan.lease, "cancelled")
    if reason is StopReason.SHUTDOWN:
        return Answer(plan.lease, "returned")
    return None
