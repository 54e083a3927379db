"""The producer's side: enqueue, inspect, cancel, retry and wait for tasks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from arqd.core.errors import (
    ArqdError,
    BreakerNotFound,
    InvalidTask,
    InvalidTransition,
    TaskNotFound,
    TaskWaitTimeout,
)
from arqd.core.settings import Settings
from arqd.core.task import NewTask, Task, TaskStatus, check_name, check_queue
from arqd.defaults import TypeDefaults
from arqd.enqueueing import created_at, prepare, settle, snapshot
from arqd.feeds import EventFeed, EventFilter, StreamEvent, SystemFeed
from arqd.queue_control import QueueControl
from arqd.resilience.breaker import State
from arqd.resilience.limiter import RateLimiter
from arqd.schedule_control import ScheduleControl
from arqd.store import listing
from arqd.store.audit import Audit, AuditEvent
from arqd.store.codec import Cancelled, Retried
from arqd.store.connection import FEEDS, REQUESTS, WORKER, Profile, connect, resolve_url
from arqd.store.events import START, SYSTEM_SOURCES, just_before
from arqd.store.history import KEPT_MINUTES, Throughput
from arqd.store.queue_stats import QueueStats
from arqd.store.store import Memory, Store, Topology
from arqd.store.workers import WorkerInfo
from arqd.workflow_control import WorkflowControl

if TYPE_CHECKING:
    from arqd.observability.metrics import Metrics

__all__ = [
    "FEEDS",
    "REQUESTS",
    "WORKER",
    "AuditEvent",
    "BreakerInfo",
    "Client",
    "Memory",
    "NewTask",
    "Profile",
    "QueueStats",
    "TaskPage",
    "Throughput",
    "WorkerInfo",
    "resolve_url",
]


WAIT_BLOCK = 2.0  # seconds one read of a waited task's events blocks at most
FINISHED = tuple(s for s in TaskStatus if s.is_finished)


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


class Client:
    """Async client. ``Client.from_settings()`` connects as the environment says."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.settings = store.settings
        self.defaults = TypeDefaults(store, store.settings)
        self.schedules = ScheduleControl(self)  # create, read, pause, trigger schedules
        self.queues = QueueControl(store)  # pause and resume queues and task types
        self.logs = store.reports.read  # logs(task_id, queue=None): its lines, oldest first
        self.workflows = WorkflowControl(self)  # chains and groups of tasks

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Client:
        settings = settings or Settings.from_env()
        return cls.connect(resolve_url(settings), settings)

    @classmethod
    def connect(cls, url: str, settings: Settings, profile: Profile = WORKER) -> Client:
        """A client of the Redis at ``url``, with ``profile``'s timeouts."""
        return cls(Store(connect(url, profile), settings))

    async def close(self) -> None:
        await self.store.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def enqueue(self, task_type: str, payload: Any = None, **options: Any) -> Task:
        """Enqueue one task. Options are ``NewTask``'s fields (queue, priority, delay, eta,
        max_retries, timeout, idempotency_key, dedupe, result_ttl, expires_in, expire_at)."""
        return await self.enqueue_task(NewTask(task_type, payload, **options))

    async def enqueue_task(self, task: NewTask) -> Task:
        """``enqueue`` of a task already described. Concurrent calls share script calls
        (see ``store.grouping``); each gets its own answer or error."""
        (queue,) = prepare([task], self.settings)
        outcome = await self.store.tasks.enqueue_one(task)
        if not outcome.created:
            return await self._require(outcome.id, queue)
        if self.defaults.stale():
            await self.defaults.refresh()
        made = snapshot(task, queue, self.defaults.of(task.type))
        return settle(made, task, outcome, created_at(outcome.at_ms))

    async def enqueue_many(self, tasks: Sequence[NewTask]) -> list[Task]:
        """Enqueue many tasks in one round trip; all are validated before any is written."""
        queues = prepare(tasks, self.settings)
        sending = asyncio.ensure_future(self.store.tasks.enqueue(tasks))
        try:
            await asyncio.sleep(0)  # it validates the tasks and sends them
            # The snapshots are made while Redis runs the script, not after it answers:
            # they were a fifth of a batch's time (bench.core, batches of 1,000).
            of = self.defaults.of
            made = [snapshot(t, queue, of(t.type)) for t, queue in zip(tasks, queues, strict=True)]
            outcomes = await sending
        except BaseException:
            sending.cancel()
            raise
        if self.defaults.stale():
            await self.defaults.refresh()
            made = [
                snapshot(t, q, self.defaults.of(t.type)) for t, q in zip(tasks, queues, strict=True)
            ]
        result = []
        for made_one, task, queue, outcome in zip(made, tasks, queues, outcomes, strict=True):
            if outcome.created:
                result.append(settle(made_one, task, outcome, created_at(outcome.at_ms)))
            else:
                result.append(await self._require(outcome.id, queue))
        return result

    async def get(self, task_id: str, queue: str | None = None) -> Task | None:
        """The task with this id, or None (never existed, or expired after its TTL).
        Its max retries and timeout are the effective ones (see ``arqd.defaults``)."""
        task = await self.store.tasks.get(task_id, queue)
        return None if task is None else await self.defaults.one(task)

    async def _require(self, task_id: str, queue: str | None) -> Task:
        task = await self.get(task_id, queue)
        if task is None:
            raise TaskNotFound(task_id)
        return task

    async def by_idempotency_key(self, queue: str, key: str) -> Task | None:
        """The task enqueued on ``queue`` with idempotency key ``key``, while the key lives."""
        found = await self.store.tasks.by_idempotency_key(check_queue(queue), key)
        return (await self.defaults.apply([found]))[0] if found else None

    async def delete(self, queue: str, status: TaskStatus | str, task_ids: Sequence[str]) -> int:
        """Delete finished tasks (``status``: succeeded, failed, cancelled or expired) before
        their result TTL runs out; a task no longer in that status is left alone. How many."""
        if status not in FINISHED:
            raise InvalidTask(f"only finished tasks are deleted, not {status!r} ones")
        return await self.store.tasks.delete(check_queue(queue), str(status), task_ids)

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
        queues = [check_queue(queue)] if queue else await self.store.tasks.queues()
        tasks, nxt = await listing.list_tasks(
            self.store.tasks, queues, statuses, task_type, cursor, limit
        )
        shown = [t for t in await self.defaults.apply(tasks) if t is not None]
        return TaskPage(shown, nxt)

    async def cancel(self, task_id: str, queue: str | None = None) -> Task:
        """Cancel a queued or scheduled task at once; ask a running one to stop."""
        task = await self._require(task_id, queue)
        outcome = await self.store.tasks.cancel(task.queue, task_id)
        if outcome is Cancelled.MISSING:
            raise TaskNotFound(task_id)
        if outcome is Cancelled.FINISHED:
            raise InvalidTransition(f"task {task_id} has already finished ({task.status})")
        if "." in task_id:  # a workflow's member: relay what it left (see store.relay)
            await self.store.relay.after(task.queue, task_id)
        return await self._require(task_id, task.queue)

    async def retry(self, task_id: str, queue: str | None = None) -> Task:
        """Queue a failed (or cancelled) task again with a fresh retry budget."""
        task = await self._require(task_id, queue)
        outcome = await self.store.tasks.retry(task.queue, task_id)
        if "." in task_id:  # a workflow's member: relay what it left (see store.relay)
            await self.store.relay.after(task.queue, task_id)
        refusal = "task {id} is {status}; only failed or cancelled tasks can be retried"
        return await self._queued(task_id, outcome, refusal)

    async def run_now(self, task_id: str, queue: str | None = None) -> Task:
        """Queue a scheduled task at once: its delay (or its backoff before a retry) is cut
        short, and a worker takes it as soon as one has a free slot."""
        task = await self._require(task_id, queue)
        outcome = await self.store.tasks.run_now(task.queue, task_id)
        return await self._queued(task_id, outcome, "task {id} is {status}, not scheduled")

    async def _queued(self, task_id: str, outcome: Retried, refusal: str) -> Task:
        """The task a retry or run_now script queued; else TaskNotFound, or ``refusal``
        (naming the status the task was in) as InvalidTransition."""
        if outcome.task is not None:
            return await self.defaults.one(outcome.task)
        if outcome.refused_in is None:
            raise TaskNotFound(task_id)
        raise InvalidTransition(refusal.format(id=task_id, status=outcome.refused_in))

    async def wait(
        self, task_id: str, timeout: float | None = None, queue: str | None = None
    ) -> Task:
        """Wait until the task finishes, woken by its queue's events (no polling); raises
        TaskWaitTimeout after ``timeout`` seconds, TaskNotFound if it expires meanwhile."""
        task = await self._require(task_id, queue)
        deadline = None if timeout is None else time.monotonic() + timeout
        events = self.store.events
        # The position is taken before the task is read again: no event is missed between.
        position = (await events.newest([task.queue]))[task.queue]
        while True:
            task = await self._require(task_id, task.queue)
            if task.status.is_finished:
                return task
            left = WAIT_BLOCK if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise TaskWaitTimeout(f"task {task_id} still {task.status} after {timeout} s")
            block_ms = max(1, int(min(left, WAIT_BLOCK) * 1000))
            seen = await events.read_after({task.queue: position}, block_ms)
            position = seen[-1].id if seen else position

    async def stats(self, queue: str | None = None) -> list[QueueStats]:
        """Counts per status for ``queue``, or for every known queue."""
        queues = [check_queue(queue)] if queue else await self.store.tasks.queues()
        return list(await asyncio.gather(*(self.store.tasks.stats(q) for q in queues)))

    async def throughput(self, queue: str, minutes: int = KEPT_MINUTES) -> Throughput:
        """Tasks of ``queue`` that succeeded and failed (for good: retries are not counted)
        in each of the last ``minutes`` minutes (at most a day), by Redis's clock."""
        if not 1 <= minutes <= KEPT_MINUTES:
            raise InvalidTask(f"minutes must be between 1 and {KEPT_MINUTES}, got {minutes}")
        return await self.store.history.throughput(check_queue(queue), minutes)

    async def memory(self) -> list[Memory]:
        """Redis memory in use, and its limit, on each master."""
        return await self.store.memory()

    async def topology(self) -> Topology:
        """What arqd runs on: one server or Sentinel, the master, its replicas in sync."""
        return await self.store.topology()

    def slot(self, queue: str) -> int:
        """``queue``'s Redis Cluster hash slot: its keys share one (CLUSTER KEYSLOT)."""
        return self.store.keys.slot(check_queue(queue))

    async def placement(self, queue: str) -> tuple[int, str]:
        """Where ``queue`` lives: its slot and the server that holds it (``host:port``;
        behind Sentinel, the master now)."""
        return self.slot(queue), await self.store.node(queue)

    async def workers(self) -> list[WorkerInfo]:
        """Workers whose heartbeat is recent."""
        return await self.store.workers.live()

    async def breakers(self) -> list[BreakerInfo]:
        """Every breaker that has recorded a failure: task types' and named ones."""
        found = await self.store.limits.all_breakers(await self.store.tasks.queues())
        return [_breaker(name, fields) for name, fields in found]

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
            await self.store.limits.reset_type_breaker(check_queue(queue), check_name(task_type))
        else:
            await self.store.limits.breaker(check_name(name), "reset")
        info = await self.breaker(name)
        if info is None:
            raise ArqdError(f"breaker {name!r} vanished while being reset")
        return info

    # Live events.

    def events(
        self,
        queue: str | None = None,
        task_id: str | None = None,
        task_type: str | None = None,
        last_event_id: str | None = None,
    ) -> EventFeed:
        """Task events of ``queue`` (None: every queue, new ones too) as they happen, from
        just after ``last_event_id`` when given; ``async for event in client.events():``.
        ``await feed.start()`` fixes where it starts before the first event is awaited."""
        return EventFeed(
            self.store,
            check_queue(queue) if queue else None,
            EventFilter(task_id, task_type),
            last_event_id,
        )

    def system_events(
        self, sources: Sequence[str] = SYSTEM_SOURCES, last_event_id: str | None = None
    ) -> SystemFeed:
        """Named breakers' transitions and rate-limit refusals, as they happen."""
        return SystemFeed(self.store, sources, last_event_id)

    async def ping(self) -> None:
        """Return when Redis answers; raise redis-py's ConnectionError if it does not."""
        await self.store.ping()

    async def refresh(self, metrics: Metrics) -> None:
        """Read the cluster-wide gauges of ``metrics`` (queues, workers, breakers) from Redis."""
        await metrics.refresh(self.store)

    def rate_limiter(self, scope: str) -> RateLimiter:
        """The rate limits of ``scope``, shared with every process on this Redis."""
        return RateLimiter(self.store, scope)

    # The dashboard's reads and its audit trail.

    async def task_history(self, task: Task) -> list[StreamEvent]:
        """The events of ``task`` still in its queue's capped stream, oldest first. The
        stream's ids are Redis times, so only entries since the task was created (by Redis's
        clock: the task is read again, a snapshot's time is the caller's) are read."""
        stored = await self.store.tasks.get(task.id, task.queue)
        created = (stored or task).created_at
        start = just_before(f"{int(created.timestamp() * 1000)}-0") if created else START
        positions = {task.queue: start}
        found = await self.store.events.read_after(positions, 1, count=self.settings.events_max)
        mine = task.id.encode()
        return [event for event in found if event.fields.get(b"task") == mine]

    async def refusals(self, limit: int = 20) -> list[StreamEvent]:
        """The newest requests the HTTP rate limit refused, newest first."""
        return await self.store.events.recent("rate_limit", limit)

    async def audit(self, actor: str, action: str, target: str, count: int) -> None:
        """Record an operator's action (``actor``: a key's digest, never the key)."""
        await Audit(self.store.redis, self.store.keys).append(actor, action, target, count)

    async def audit_log(self, limit: int = 100) -> list[AuditEvent]:
        """The newest recorded actions, newest first."""
        return await Audit(self.store.redis, self.store.keys).recent(limit)


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
