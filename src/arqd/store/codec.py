"""The wire format: what the scripts take and return, and arqd's objects from and to it.
Each script's reply is decoded here, once, into a named type.

A task's hash uses short field names to keep Redis memory low; the four every task has
are one letter, so a small task's hash fits a 48-byte allocation (not 64):

    t      task type             d      payload JSON          s      status
    prio   priority (absent: 0)  att    attempts so far       tok    lease token (fencing)
    maxr   max retries           tmo    timeout ms            rttl   result TTL ms
    c      created ms            due    scheduled-at ms       stime  last start ms
    ftime  finished ms           result result JSON           error  last error JSON
    idem   idempotency key       trace  trace context JSON    wkr    worker id
    cxl    "1" once cancellation of a running task was requested    pg  progress JSON
    exp    deadline ms: a task not started by then ends expired

The status is a code of a letter or two (``STATUS_CODES``; the scripts name them in
``lua/common.lua``): most tasks in Redis are queued ones, and a 6-byte "queued" would take
each small task's hash past its allocation size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson

from arqd.core.errors import InvalidTask, PayloadTooLarge
from arqd.core.lease import Answer, Lease
from arqd.core.reports import decode_progress
from arqd.core.task import (
    ErrorInfo,
    NewTask,
    Task,
    TaskStatus,
    check_name,
    check_queue,
    check_task_id,
)
from arqd.store.deadlines import expiry_options
from arqd.store.dedupe import dedupe_option

ArgList = list[str | bytes | int | float]

STATUS_CODES = {
    TaskStatus.QUEUED: b"q",
    TaskStatus.SCHEDULED: b"w",
    TaskStatus.ACTIVE: b"a",
    TaskStatus.SUCCEEDED: b"ok",
    TaskStatus.FAILED: b"f",
    TaskStatus.CANCELLED: b"x",
    TaskStatus.EXPIRED: b"e",
}
_STATUS_OF = {code: status for status, code in STATUS_CODES.items()}


def text(value: object) -> str:
    """A Redis reply item as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


US, RS = b"\x1f", b"\x1e"  # field and record separators of packed answers (finish.lua)


def pack_answers(answers: Sequence[Answer]) -> bytes:
    """The finish script's answers in one argument: packing many small arguments one by
    one is where redis-py would spend most of a busy worker's time."""
    return RS.join(
        US.join(
            (
                a.lease.id.encode(),
                a.lease.token,
                a.outcome.encode(),
                a.value,
                b"%d" % a.delay_ms,
                a.breaker.encode(),
                b"%d" % a.breaker_threshold,
                b"%d" % a.breaker_open_ms,
            )
        )
        for a in answers
    )


def maybe_members(answers: Sequence[Answer]) -> bytes:
    """The ids of answers that may be workflow members (finish.lua's ARGV[7]): a member's
    id is ``<workflow>.<step>.<position>`` and a generated id has no dot, so a batch of
    other tasks sends ``b""`` and the script spends nothing on workflows."""
    return US.join(a.lease.id.encode() for a in answers if "." in a.lease.id)


def dumps_payload(payload: Any, limit: int) -> bytes:
    """Serialize a payload to JSON, refusing what is not JSON or is too large."""
    try:
        data = orjson.dumps(payload)
    except TypeError as exc:
        raise InvalidTask(f"payload is not JSON-serializable: {exc}") from None
    if len(data) > limit:
        raise PayloadTooLarge(len(data), limit)
    return data


def _due(task: NewTask) -> ArgList:
    """When the task is due: ``delay`` ms, or ``at`` (an eta in ms, which Redis's clock
    judges: one already past makes the task ready), or nothing, for a task due now."""
    if task.delay is not None and task.eta is not None:
        raise InvalidTask("give either delay or eta, not both")
    if task.eta is not None:
        if task.eta.tzinfo is None:
            raise InvalidTask("eta must be timezone-aware (e.g. datetime.now(UTC))")
        return ["at", round(task.eta.timestamp() * 1000)]
    if task.delay is not None:
        if task.delay < 0:
            raise InvalidTask(f"delay must be >= 0 seconds, got {task.delay}")
        return ["delay", delay] if (delay := round(task.delay * 1000)) else []
    return []


def _options(task: NewTask, idempotency_ttl_ms: int) -> ArgList:
    """A task's options as the enqueue script takes them: name/value pairs, none for a
    task that has none (the common case, which the script writes on a fast path)."""
    options: ArgList = []
    if not isinstance(task.priority, int) or not -1_000_000 <= task.priority <= 1_000_000:
        raise InvalidTask(f"priority must be an integer in ±1,000,000, got {task.priority!r}")
    if task.priority:
        options += ["prio", task.priority]
    options += _due(task) + expiry_options(task)
    if task.idempotency_key:
        if len(task.idempotency_key) > 256:
            raise InvalidTask("idempotency_key must be at most 256 characters")
        options += ["idem", task.idempotency_key, "ittl", idempotency_ttl_ms]
    return options + dedupe_option(task, idempotency_ttl_ms) + _stored_options(task)


def _stored_options(task: NewTask) -> ArgList:
    """The options kept in the task's hash as they are sent."""
    stored: ArgList = []
    if task.max_retries is not None:
        if task.max_retries < 0:
            raise InvalidTask(f"max_retries must be >= 0, got {task.max_retries}")
        stored += ["maxr", task.max_retries]
    if task.timeout is not None:
        if task.timeout <= 0:
            raise InvalidTask(f"timeout must be > 0 seconds, got {task.timeout}")
        stored += ["tmo", round(task.timeout * 1000)]
    if task.result_ttl is not None:
        if task.result_ttl <= 0:
            raise InvalidTask(f"result_ttl must be > 0 seconds, got {task.result_ttl}")
        stored += ["rttl", round(task.result_ttl * 1000)]
    if task.trace_context:
        stored += ["trace", orjson.dumps(task.trace_context)]
    return stored


def enqueue_args(task: NewTask, payload_limit: int, idempotency_ttl_ms: int) -> ArgList:
    """The enqueue script's arguments for one task (see enqueue.lua), validating it: id,
    type, payload, the number of option pairs, the pairs. A task with no options is four
    arguments, which Redis reads and the script takes apart faster than a fixed layout."""
    check_name(task.type)
    check_task_id(task.id)  # a caller may choose it
    options = _options(task, idempotency_ttl_ms)
    data = dumps_payload(task.payload, payload_limit)
    return [task.id, task.type, data, len(options) // 2, *options]


def enqueue_script(args: ArgList) -> str:
    """The script an enqueue call with ``args`` runs: ``enqueue_dedupe`` when a task may
    have a ``dd`` pair (an id or type spelled ``dd`` too, which costs only the bigger
    script), else ``enqueue``, which has no dedupe code (see scripts.VARIANTS)."""
    return "enqueue_dedupe" if "dd" in args else "enqueue"


@dataclass(frozen=True, slots=True)
class EnqueueCall:
    """One enqueue script call: the tasks of one queue, and where they sit in the batch."""

    queue: str
    positions: list[int]
    ids: list[str]
    args: ArgList  # per task, ``enqueue_args``; the caller adds the stream cap and count


def plan_enqueue(
    tasks: Sequence[NewTask], default_queue: str, payload_limit: int, idempotency_ttl_ms: int
) -> list[EnqueueCall]:
    """A batch as one script call per queue, every task validated before any is sent."""
    if len({task.id for task in tasks}) < len(tasks):
        raise InvalidTask("a batch holds the same task (the same id) twice")
    calls: dict[str, EnqueueCall] = {}
    for position, task in enumerate(tasks):
        queue = task.queue or default_queue
        call = calls.get(queue)
        if call is None:
            call = calls[queue] = EnqueueCall(queue, [], [], [])
        call.positions.append(position)
        call.ids.append(task.id)
        call.args.extend(enqueue_args(task, payload_limit, idempotency_ttl_ms))
    return list(calls.values())


@dataclass(slots=True)  # one a task: a frozen one would cost twice as much (bench.core)
class Enqueued:
    """The enqueue script's answer for one task: ``created``, or the id of the task that
    was there already (the same id sent again, or the same idempotency key); ``at_ms``
    is Redis's time when the script ran, a created task's creation time."""

    id: str
    created: bool
    at_ms: int


def decode_enqueued(reply: Sequence[Any], task_ids: Sequence[str]) -> list[Enqueued]:
    """Each task of one enqueue script call, in order. The reply: Redis's time (ms), the
    no-stream flag, then for each task there already its 1-based place and the id found."""
    at_ms = int(reply[0])
    if len(reply) == 2:  # every task created, the common case
        return [Enqueued(task_id, True, at_ms) for task_id in task_ids]
    found = {int(reply[i]) - 1: reply[i + 1].decode() for i in range(2, len(reply), 2)}
    earlier = [found.get(k) for k in range(len(task_ids))]
    return [Enqueued(e or i, e is None, at_ms) for i, e in zip(task_ids, earlier, strict=True)]


def had_no_stream(reply: Sequence[Any]) -> bool:
    """The queue had no event stream: its name may be missing from the set of names."""
    return bool(reply[1] == 1)


def in_batch_order(
    calls: Sequence[EnqueueCall], replies: Sequence[Sequence[Any]], count: int
) -> list[Enqueued]:
    """The answers of a batch's script calls (one per queue), in the batch's order."""
    results: list[Enqueued] = [Enqueued("", False, 0)] * count
    for call, reply in zip(calls, replies, strict=True):
        for position, outcome in zip(call.positions, decode_enqueued(reply, call.ids), strict=True):
            results[position] = outcome
    return results


@dataclass(frozen=True, slots=True)
class Fetched:
    """The dequeue script's answer: the leases, the tasks a rate limit put off, a limit or
    a pause held or that expired, and the ms until the queue's next timed event (-1: none;
    0 when ``member_left``: the end of a workflow member was left for ``dequeue_members``,
    the script with the workflow helpers, see dequeue.lua)."""

    queue: str
    leases: list[Lease]
    throttled: int
    held_by_concurrency: int
    held_by_breaker: int
    next_event_ms: int
    held_by_pause: int = 0
    expired: int = 0
    member_left: bool = False


def decode_fetched(queue: str, reply: Sequence[Any]) -> Fetched:
    fields = iter(reply[8 : 8 + 9 * int(reply[1])])
    leases = [
        Lease(
            queue,
            tid.decode(),
            b"%d" % token,  # Lua returns the token as an integer
            ttype.decode(),
            payload,
            att,
            int(maxr) if maxr else None,
            int(tmo) if tmo else None,
            trace or None,
            waited,
        )
        for tid, token, ttype, payload, att, maxr, tmo, trace, waited in zip(
            *(fields,) * 9, strict=True
        )
    ]
    left = reply[7] == 1
    next_ms = 0 if left else reply[0]
    return Fetched(queue, leases, reply[2], reply[3], reply[4], next_ms, reply[5], reply[6], left)


@dataclass(frozen=True, slots=True)
class Renewal:
    """The heartbeat script's answer: leases lost to another attempt, and tasks whose
    cancellation was asked for."""

    lost: frozenset[str]
    cancel: frozenset[str]


def decode_renewal(reply: Sequence[Any]) -> Renewal:
    lost, cancel = reply
    return Renewal(frozenset(i.decode() for i in lost), frozenset(i.decode() for i in cancel))


class Cancelled(StrEnum):
    """The cancel script's answer."""

    CANCELLED = "cancelled"  # it was queued or scheduled, and is cancelled now
    REQUESTED = "requested"  # it is running: its worker is told to stop it
    MISSING = "missing"
    FINISHED = "finished"  # it had finished already


@dataclass(frozen=True, slots=True)
class Retried:
    """The retry (or run_now) script's answer: the task as it is once queued again, or the
    status that kept it from being queued (None: no such task)."""

    task: Task | None
    refused_in: TaskStatus | None = None


def decode_retried(queue: str, task_id: str, reply: Any) -> Retried:
    if reply == b"missing":
        return Retried(None)
    if isinstance(reply, bytes):
        return Retried(None, TaskStatus(reply.decode()))
    return Retried(decode_task(queue, task_id, dict(zip(reply[::2], reply[1::2], strict=True))))


@dataclass(frozen=True, slots=True)
class BreakerAnswer:
    """The breaker script's answer: may the call pass, when to ask again (ms), and the
    breaker's state after it (0 closed, 1 open, 2 half-open)."""

    allowed: bool
    retry_after_ms: int
    state: int


def decode_breaker(reply: Sequence[Any]) -> BreakerAnswer:
    allowed, retry, state = reply
    return BreakerAnswer(allowed == 1, int(retry), int(state))


@dataclass(frozen=True, slots=True)
class Token:
    """The rate-limit script's answer for one limit."""

    allowed: bool
    retry_after_ms: int  # until a token is free (0 when allowed)
    remaining: int
    reset_ms: int  # until the budget is full again


def decode_tokens(flat: Sequence[Any]) -> list[Token]:
    return [
        Token(flat[i] == 1, int(flat[i + 1]), int(flat[i + 2]), int(flat[i + 3]))
        for i in range(0, len(flat), 4)
    ]


def _time(value: bytes | None) -> datetime | None:
    return datetime.fromtimestamp(int(value) / 1000, UTC) if value else None


def _error(value: bytes | None) -> ErrorInfo | None:
    if not value:
        return None
    data = orjson.loads(value)
    return ErrorInfo(type=data["type"], message=data["message"], traceback=data.get("traceback"))


def decode_task(queue: str, task_id: str, h: Mapping[bytes, bytes]) -> Task:
    """A Task from its hash (see the field table above)."""
    return Task(
        id=task_id,
        type=h[b"t"].decode(),
        queue=check_queue(queue),
        status=_STATUS_OF[h[b"s"]],
        payload=orjson.loads(h[b"d"]),
        priority=int(h.get(b"prio", 0)),
        attempts=int(h.get(b"att", 0)),
        max_retries=int(h[b"maxr"]) if b"maxr" in h else None,
        timeout=int(h[b"tmo"]) / 1000 if b"tmo" in h else None,
        created_at=_time(h.get(b"c")),
        scheduled_at=_time(h.get(b"due")),
        started_at=_time(h.get(b"stime")),
        finished_at=_time(h.get(b"ftime")),
        result=orjson.loads(h[b"result"]) if b"result" in h else None,
        error=_error(h.get(b"error")),
        idempotency_key=h[b"idem"].decode() if b"idem" in h else None,
        result_ttl=int(h[b"rttl"]) / 1000 if b"rttl" in h else None,
        cancel_requested=b"cxl" in h,
        worker=h[b"wkr"].decode() if b"wkr" in h else None,
        trace_context=orjson.loads(h[b"trace"]) if b"trace" in h else {},
        expires_at=_time(h.get(b"exp")),
        progress=decode_progress(h.get(b"pg")),
    )


def error_json(error_type: str, message: str, traceback: str | None) -> bytes:
    return orjson.dumps({"type": error_type, "message": message, "traceback": traceback})
