"""The producer's side: enqueue, inspect, cancel, retry and wait for tasks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from arqd.core.errors import (
    ArqdError,
    BreakerNotFound,
    InvalidTask,
    InvalidTransition,
    TaskNotFound,
    TaskWaitTimeout,
)
from arqd.core.settings import Settings
from arqd.core.task import Task, TaskStatus, check_name, check_queue
from arqd.observability import tracing
from arqd.resilience.breaker import State
from arqd.store import listing
from arqd.store.codec import NewTask
from arqd.store.connection import connect, resolve_url
from arqd.store.keys import http_client
from arqd.store.store import QueueStats, Store

__all__ = ["BreakerInfo", "Client", "NewTask", "TaskPage", "WorkerInfo"]


@dataclass(frozen=True, slots=True)
class TaskPage:
    """One page of a listing; pass ``next_cursor`` back for the next (None: no more)."""

    tasks: list[Task]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class BreakerInfo:
    """A circuit breaker's state. Task types' breakers are named ``task:QUEUE:TYPE``."""

    name: str
    state: State
    failures: int
    open_until: datetime | None
    trial: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state.name.lower(),
            "state_value": int(self.state),
            "failures": self.failures,
            "open_until": self.open_until.isoformat() if self.open_until else None,
            "trial_running": self.trial,
        }


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A live worker, as it last described itself."""

    id: str
    last_seen: datetime
    details: dict[str, Any]


HTTP_SCOPE = "http"  # the rate-limit scope of HTTP requests


class Client:
    """Async client. ``Client.from_settings()`` connects as the environment says."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.settings = store.settings

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Client:
        settings = settings or Settings.from_env()
        return cls(Store(connect(resolve_url(settings)), settings))

    async def close(self) -> None:
        await self.store.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def enqueue(self, task_type: str, payload: Any = None, **options: Any) -> Task:
        """Enqueue one task. Options are the fields of ``NewTask`` (queue, priority, delay,
        eta, max_retries, timeout, idempotency_key, result_ttl)."""
        task = NewTask(task_type, payload, **options)
        (queue,) = prepare([task], self.settings)
        task_id, created = await self.store.enqueue_one(task)
        if created:
            return snapshot(task, queue, datetime.now(UTC))
        return await self._require(task_id, queue)

    async def enqueue_many(self, tasks: Sequence[NewTask]) -> list[Task]:
        """Enqueue many tasks in one round trip; all are validated before any is written."""
        queues = prepare(tasks, self.settings)
        sending = asyncio.ensure_future(self.store.enqueue(tasks))
        try:
            await asyncio.sleep(0)  # it validates the tasks and sends them
            # The snapshots are made while Redis runs the script, not after it answers:
            # they were a fifth of a batch's time (bench.core, batches of 1,000).
            now = datetime.now(UTC)
            made = [snapshot(task, queue, now) for task, queue in zip(tasks, queues, strict=True)]
            outcomes = await sending
        except BaseException:
            sending.cancel()
            raise
        result = []
        for made_one, queue, (task_id, created) in zip(made, queues, outcomes, strict=True):
            result.append(made_one if created else await self._require(task_id, queue))
        return result

    async def get(self, task_id: str, queue: str | None = None) -> Task | None:
        """The task with this id, or None (never existed, or expired after its TTL)."""
        return await self.store.get(task_id, queue)

    async def _require(self, task_id: str, queue: str | None) -> Task:
        task = await self.store.get(task_id, queue)
        if task is None:
            raise TaskNotFound(task_id)
        return task

    async def list_tasks(
        self,
        queue: str | None = None,
        status: TaskStatus | str | None = None,
        task_type: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> TaskPage:
        """Tasks by queue, status and type, a page at a time."""
        if not 1 <= limit <= 1000:
            raise InvalidTask(f"limit must be between 1 and 1000, got {limit}")
        try:
            statuses = (TaskStatus(status),) if status else listing.ORDER
        except ValueError:
            choices = ", ".join(s.value for s in TaskStatus)
            raise InvalidTask(f"unknown status {status!r}: use one of {choices}") from None
        queues = [check_queue(queue)] if queue else await self.store.queues()
        tasks, nxt = await listing.list_tasks(
            self.store, queues, statuses, task_type, cursor, limit
        )
        return TaskPage(tasks, nxt)

    async def cancel(self, task_id: str, queue: str | None = None) -> Task:
        """Cancel a queued or scheduled task at once; ask a running one to stop."""
        task = await self._require(task_id, queue)
        outcome = await self.store.cancel(task.queue, task_id)
        if outcome == "missing":
            raise TaskNotFound(task_id)
        if outcome == "finished":
            raise InvalidTransition(f"task {task_id} has already finished ({task.status})")
        return await self._require(task_id, task.queue)

    async def retry(self, task_id: str, queue: str | None = None) -> Task:
        """Queue a failed (or cancelled) task again with a fresh retry budget."""
        task = await self._require(task_id, queue)
        outcome = await self.store.retry(task.queue, task_id)
        if outcome == "missing":
            raise TaskNotFound(task_id)
        if isinstance(outcome, str):
            raise InvalidTransition(
                f"task {task_id} is {outcome}; only failed or cancelled tasks can be retried"
            )
        return outcome

    async def wait(
        self, task_id: str, timeout: float | None = None, queue: str | None = None
    ) -> Task:
        """Wait until the task finishes; raises TaskWaitTimeout after ``timeout`` seconds."""
        task = await self._require(task_id, queue)
        deadline = None if timeout is None else time.monotonic() + timeout
        last = await self.store.last_event_id(task.queue)
        while True:
            task = await self._require(task_id, task.queue)
            if task.status.is_finished:
                return task
            left = 2.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise TaskWaitTimeout(f"task {task_id} still {task.status} after {timeout} s")
            block = max(1, int(min(left, 2.0) * 1000))
            for event_id, _fields in await self.store.read_events(task.queue, last, block):
                last = event_id

    async def stats(self, queue: str | None = None) -> list[QueueStats]:
        """Counts per status for ``queue``, or for every known queue."""
        queues = [check_queue(queue)] if queue else await self.store.queues()
        return list(await asyncio.gather(*(self.store.stats(q) for q in queues)))

    async def workers(self) -> list[WorkerInfo]:
        """Workers whose heartbeat is recent."""
        return [
            WorkerInfo(worker_id, datetime.fromtimestamp(seen, UTC), details)
            for worker_id, seen, details in await self.store.live_workers()
        ]

    async def breakers(self) -> list[BreakerInfo]:
        """Every breaker that has recorded a failure: task types' and named ones."""
        return [_breaker(name, fields) for name, fields in await self.store.all_breakers()]

    async def breaker(self, name: str) -> BreakerInfo | None:
        """The breaker named ``name`` (``task:QUEUE:TYPE`` for a task type's), or None."""
        return next((info for info in await self.breakers() if info.name == name), None)

    async def reset_breaker(self, name: str) -> BreakerInfo:
        """Close a breaker by hand; a task type's releases the tasks it held. Raises
        BreakerNotFound for a breaker that has never recorded a failure."""
        if await self.breaker(name) is None:
            raise BreakerNotFound(name)
        kind, _, rest = name.partition(":")
        if kind == "task":
            queue, _, task_type = rest.partition(":")
            await self.store.reset_type_breaker(check_queue(queue), check_name(task_type))
        else:
            await self.store.breaker(check_name(name), "reset")
        info = await self.breaker(name)
        if info is None:
            raise ArqdError(f"breaker {name!r} vanished while being reset")
        return info

    # The HTTP API's rate limit: its budgets live in Redis, so every replica shares them.

    @staticmethod
    def http_subject(api_key: bytes | None, address: str | None) -> str:
        """Whom an HTTP rate limit counts: an API key (only its SHA-256 is ever stored) or,
        with no key, the client's address."""
        return http_client(api_key, address)

    async def take_http_tokens(
        self, wanted: Sequence[tuple[str, float, int]]
    ) -> list[tuple[bool, int, int, int]]:
        """A token for each (subject, interval ms, burst), in one script call: (allowed,
        ms until one is free, tokens left, ms until the budget is full) each."""
        return await self.store.take_tokens(HTTP_SCOPE, wanted)

    async def note_rate_limited(self, fields: dict[str, str | int]) -> None:
        """Record a refused request on the rate-limit event stream (``WS /events/system``)."""
        await self.store.note_rate_limited(fields)


def _breaker(name: str, fields: dict[bytes, bytes]) -> BreakerInfo:
    until = int(float(fields.get(b"until", 0)))
    state = State(int(fields.get(b"state", 0)))
    return BreakerInfo(
        name=name,
        state=state,
        failures=int(fields.get(b"fails", 0)),
        open_until=datetime.fromtimestamp(until / 1000, UTC) if until and state else None,
        trial=fields.get(b"trial") == b"1",
    )


def prepare(tasks: Sequence[NewTask], settings: Settings) -> list[str]:
    """Check the tasks' queues and give them the caller's trace context; their queues."""
    queues = [check_queue(task.queue or settings.queue) for task in tasks]
    if carrier := tracing.inject_current():
        for task in tasks:
            if task.trace_context is None:
                task.trace_context = carrier
    return queues


def snapshot(task: NewTask, queue: str, now: datetime) -> Task:
    """The task as its enqueue just wrote it."""
    delayed = bool(task.delay) or task.eta is not None
    return Task(
        id=task.id,
        type=task.type,
        queue=queue,
        status=TaskStatus.SCHEDULED if delayed else TaskStatus.QUEUED,
        payload=task.payload,
        priority=task.priority,
        max_retries=task.max_retries,
        timeout=task.timeout,
        created_at=now,
        idempotency_key=task.idempotency_key,
        result_ttl=task.result_ttl,
        trace_context=task.trace_context or {},
    )
