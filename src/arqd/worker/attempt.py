"""Running one attempt of a task and classifying how it ended."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import traceback
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError

from arqd.core.backoff import RetryPolicy
from arqd.core.errors import NonRetryable, Retry
from arqd.core.lease import Answer, Lease
from arqd.resilience.breaker import BreakerPolicy
from arqd.store.codec import error_json
from arqd.worker.registry import TaskType

if TYPE_CHECKING:
    from arqd.resilience.circuit import CircuitBreaker
    from arqd.worker.reporting import AttemptReport, Reporting


class StopReason(Enum):
    """Why the worker itself interrupted an attempt."""

    CANCEL = "cancel"  # a client cancelled the task
    LOST = "lost"  # the lease was lost: another attempt replaced this one
    SHUTDOWN = "shutdown"  # the grace period ran out: hand the task back
    TIMEOUT = "timeout"  # the attempt ran past its timeout


@dataclass(slots=True)
class TaskContext:
    """What a handler may know about its attempt (declare a ``ctx`` parameter to get it)."""

    task_id: str
    task_type: str
    queue: str
    attempt: int
    max_retries: int
    breakers: Callable[[str, BreakerPolicy | None], CircuitBreaker] | None = None
    stop_reason: StopReason | None = None
    reporting: Reporting | None = None
    token: bytes = b""  # the lease's: progress and log writes are fenced by it
    report: AttemptReport | None = None  # made at the first progress or log line

    def progress(self, value: Any, message: str | None = None) -> None:
        """Say how far the attempt got: ``value`` a fraction (0.42) or any JSON, and an
        optional message. Cheap to call often: writes are coalesced, the last one kept
        (see ``arqd.worker.reporting``). Safe from a sync handler's thread."""
        self._report().progress(value, message)

    def log(self, message: str, level: int | str = logging.INFO) -> None:
        """Add a line to the attempt's log (``GET /tasks/{id}/logs``); ``logging`` calls
        made inside the handler land there too."""
        name = logging.getLevelName(level) if isinstance(level, int) else level.upper()
        self._report().log(name, str(message))

    def _report(self) -> AttemptReport:
        if self.report is not None:
            return self.report
        if self.reporting is None:
            raise RuntimeError("this context cannot report (it was not made by a Worker)")
        return self.reporting.report_of(self)

    def breaker(self, name: str, policy: BreakerPolicy | None = None) -> CircuitBreaker:
        """The named circuit breaker ``name``, shared by every worker: wrap a dependency
        call in ``async with ctx.breaker("payments"):`` (or ``with`` in a sync handler)."""
        if self.breakers is None:
            raise RuntimeError("this context has no breakers (it was not made by a Worker)")
        return self.breakers(name, policy)

    @property
    def cancel_requested(self) -> bool:
        """True once the task was cancelled; long handlers should check it and return."""
        return self.stop_reason is StopReason.CANCEL


@dataclass(frozen=True, slots=True)
class Profile:
    """How attempts of one task type run: worked out once per type, not per task."""

    task_type: TaskType | None
    policy: RetryPolicy
    timeout: float
    breaker: BreakerPolicy | None = None
    breaker_threshold: int = 0
    breaker_open_ms: int = 0


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything needed to run one attempt."""

    lease: Lease
    profile: Profile
    context: TaskContext

    @property
    def task_type(self) -> TaskType | None:
        return self.profile.task_type

    @property
    def policy(self) -> RetryPolicy:
        return self.profile.policy

    def answer(
        self, outcome: str, value: bytes = b"", delay_ms: int = 0, signal: str = "neutral"
    ) -> Answer:
        """The answer for the finish script, with the type's breaker signal if it has one."""
        p = self.profile
        if p.breaker is None:
            return Answer(self.lease, outcome, value, delay_ms)
        return Answer(
            self.lease, outcome, value, delay_ms, signal, p.breaker_threshold, p.breaker_open_ms
        )

    def signal(self, error: BaseException) -> str:
        """How a failure counts for the breaker: ``fail`` or ``neutral``."""
        breaker = self.profile.breaker
        return "fail" if breaker and breaker.counts(error) else "neutral"


def _error(exc: BaseException, kind: str | None = None) -> bytes:
    tb = "".join(traceback.format_exception(exc))
    return error_json(kind or type(exc).__name__, str(exc) or repr(exc), tb)


def _failed(plan: Plan, value: bytes, signal: str = "neutral") -> Answer:
    return plan.answer("failed", value, signal=signal)


def _retry_or_fail(plan: Plan, exc: BaseException, value: bytes) -> Answer:
    signal = plan.signal(exc)
    if not plan.policy.allows(plan.lease.attempt):
        return _failed(plan, value, signal)
    delay = exc.delay if isinstance(exc, Retry) and exc.delay is not None else None
    if delay is None:
        delay = plan.policy.delay(plan.lease.attempt)
    return plan.answer("retry", value, round(delay * 1000), signal)


async def _call(plan: Plan, task_type: TaskType, executor: Executor) -> Any:
    payload = orjson.loads(plan.lease.payload)
    if task_type.payload_adapter is not None:
        payload = task_type.payload_adapter.validate_python(payload)
    if task_type.is_async:
        if task_type.wants_context:
            return await task_type.handler(payload, ctx=plan.context)
        return await task_type.handler(payload)
    kwargs = {"ctx": plan.context} if task_type.wants_context else {}
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()  # the attempt's span stays current in the thread
    return await loop.run_in_executor(
        executor, lambda: context.run(task_type.handler, payload, **kwargs)
    )


async def run_attempt(plan: Plan, executor: Executor) -> Answer | None:
    """Run the handler once; the answer for the finish script, or None if the lease was lost.

    The caller enforces the timeout: it cancels the attempt with ``StopReason.TIMEOUT``
    (one timer per attempt costs less than an ``asyncio.timeout`` block: bench.core,
    worker CPU per task)."""
    task_type = plan.task_type
    if task_type is None:
        message = f"unknown task type {plan.lease.type!r}: no worker on this queue declares it"
        return _failed(plan, error_json("UnknownTaskType", message, None))
    try:
        result = await _call(plan, task_type, executor)
    except asyncio.CancelledError:
        if plan.context.stop_reason is StopReason.TIMEOUT:
            limit = f"attempt exceeded its timeout of {plan.profile.timeout:g} s"
            return _retry_or_fail(plan, TimeoutError(limit), error_json("TaskTimeout", limit, None))
        return _interrupted(plan)
    except (ValidationError, orjson.JSONDecodeError) as exc:
        return _failed(plan, _error(exc, "InvalidPayload"))
    except NonRetryable as exc:
        return _failed(plan, _error(exc), plan.signal(exc))
    except Exception as exc:
        return _retry_or_fail(plan, exc, _error(exc))
    if plan.context.cancel_requested:
        return plan.answer("cancelled")
    try:
        return plan.answer("succeeded", orjson.dumps(result), signal="ok")
    except orjson.JSONEncodeError as exc:
        return _failed(plan, _error(exc, "InvalidResult"))


def _interrupted(plan: Plan) -> Answer | None:
    reason = plan.context.stop_reason
    if reason is StopReason.CANCEL:
        return plan.answer("cancelled")
    if reason is StopReason.SHUTDOWN:
        return plan.answer("returned")
    return None
