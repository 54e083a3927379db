"""Pure conversions between arqd's Python objects and what the scripts take and return.

A task's hash uses short field names to keep Redis memory low; the four every task has
are one letter, so a small task's hash fits a 48-byte allocation (not 64):

    t      task type             d      payload JSON          s      status
    prio   priority (absent: 0)  att    attempts so far       tok    lease token (fencing)
    maxr   max retries           tmo    timeout ms            rttl   result TTL ms
    c      created ms            due    scheduled-at ms       stime  last start ms
    ftime  finished ms           result result JSON           error  last error JSON
    idem   idempotency key       trace  trace context JSON    wkr    worker id
    cxl    "1" once cancellation of a running task was requested

The status is a code of a letter or two (``STATUS_CODES``; the scripts name them in
``lua/common.lua``): most tasks in Redis are queued ones, and a 6-byte "queued" would take
each small task's hash past its allocation size.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from arqd.core.errors import InvalidTask, PayloadTooLarge
from arqd.core.slots import direct_init
from arqd.core.task import ErrorInfo, Task, TaskStatus, check_name, check_queue, check_task_id

ArgList = list[str | bytes | int | float]

STATUS_CODES = {
    TaskStatus.QUEUED: b"q",
    TaskStatus.SCHEDULED: b"w",
    TaskStatus.ACTIVE: b"a",
    TaskStatus.SUCCEEDED: b"ok",
    TaskStatus.FAILED: b"f",
    TaskStatus.CANCELLED: b"x",
}
_STATUS_OF = {code: status for status, code in STATUS_CODES.items()}


def text(value: object) -> str:
    """A Redis reply item as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def task_ids(count: int) -> list[str]:
    """``count`` random, URL-safe 16-character ids (96 bits each from the OS's random
    source), from one read of it: 12 bytes encode to exactly 16 base64 characters, so the
    encoding of the whole run splits into the ids."""
    encoded = base64.urlsafe_b64encode(secrets.token_bytes(12 * count)).decode()
    return [encoded[i : i + 16] for i in range(0, 16 * count, 16)]


_spare_ids: list[str] = []  # drawn ahead; list.pop and extend are atomic, so threads share it
os.register_at_fork(after_in_child=_spare_ids.clear)  # a child must not reuse its parent's


def new_task_id() -> str:
    """A random, URL-safe 16-character id (96 bits), like ``task_ids``'s. They are drawn
    256 at a time: reading the random source costs a system call, which was most of what
    making an id cost."""
    while True:
        try:
            return _spare_ids.pop()
        except IndexError:
            _spare_ids.extend(task_ids(256))


@dataclass(slots=True)
class NewTask:
    """Everything a producer says about a task it enqueues. Durations are in seconds."""

    type: str
    payload: Any = None
    queue: str | None = None
    priority: int = 0
    delay: float | None = None
    eta: datetime | None = None
    max_retries: int | None = None
    timeout: float | None = None
    idempotency_key: str | None = None
    result_ttl: float | None = None
    trace_context: dict[str, str] | None = None
    id: str = field(default_factory=new_task_id)


@direct_init  # a worker makes one per task
@dataclass(frozen=True, slots=True)
class Lease:
    """One attempt of a task, leased to a worker."""

    queue: str
    id: str
    token: bytes
    type: str
    payload: bytes
    attempt: int
    max_retries: int | None
    timeout_ms: int | None
    trace: bytes | None
    waited_ms: int = 0  # how long it was ready before this attempt started


@direct_init  # a worker makes one per task
@dataclass(frozen=True, slots=True)
class Answer:
    """How one attempt ended, for the finish script."""

    lease: Lease
    outcome: str  # succeeded | failed | retry | cancelled | returned
    value: bytes = b""
    delay_ms: int = 0
    breaker: str = ""  # the type's breaker: "" (none), ok, fail or neutral
    breaker_threshold: int = 0
    breaker_open_ms: int = 0


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


def dumps_payload(payload: Any, limit: int) -> bytes:
    """Serialize a payload to JSON, refusing what is not JSON or is too large."""
    try:
        data = orjson.dumps(payload)
    except TypeError as exc:
        raise InvalidTask(f"payload is not JSON-serializable: {exc}") from None
    if len(data) > limit:
        raise PayloadTooLarge(len(data), limit)
    return data


def _delay_ms(task: NewTask) -> int:
    if task.delay is not None and task.eta is not None:
        raise InvalidTask("give either delay or eta, not both")
    if task.eta is not None:
        if task.eta.tzinfo is None:
            raise InvalidTask("eta must be timezone-aware (e.g. datetime.now(UTC))")
        return max(0, round((task.eta - datetime.now(UTC)).total_seconds() * 1000))
    if task.delay is not None:
        if task.delay < 0:
            raise InvalidTask(f"delay must be >= 0 seconds, got {task.delay}")
        return round(task.delay * 1000)
    return 0


def _options(task: NewTask, idempotency_ttl_ms: int) -> ArgList:
    """A task's options as the enqueue script takes them: name/value pairs, none for a
    task that has none (the common case, which the script writes on a fast path)."""
    options: ArgList = []
    if not isinstance(task.priority, int) or not -1_000_000 <= task.priority <= 1_000_000:
        raise InvalidTask(f"priority must be an integer in ±1,000,000, got {task.priority!r}")
    if task.priority:
        options += ["prio", task.priority]
    if delay := _delay_ms(task):
        options += ["delay", delay]
    if task.idempotency_key:
        if len(task.idempotency_key) > 256:
            raise InvalidTask("idempotency_key must be at most 256 characters")
        options += ["idem", task.idempotency_key, "ittl", idempotency_ttl_ms]
    return options + _stored_options(task)


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


def found_earlier(reply: Sequence[Any]) -> dict[int, str]:
    """The enqueue script's reply: the tasks (0-based place in the call) that were there
    already, with the id found. Every other task of the call was created."""
    return {int(reply[i]) - 1: reply[i + 1].decode() for i in range(1, len(reply), 2)}


def call_outcomes(reply: Sequence[Any], task_ids: Sequence[str]) -> list[tuple[str, bool]]:
    """(id, created) for each task of one enqueue script call, from its reply: the id
    found for a task that was there already."""
    earlier = found_earlier(reply) if len(reply) > 1 else {}
    return [
        (task_id, True) if (found := earlier.get(k)) is None else (found, False)
        for k, task_id in enumerate(task_ids)
    ]


def enqueue_outcomes(
    calls: Sequence[EnqueueCall], replies: Sequence[Sequence[Any]], count: int
) -> list[tuple[str, bool]]:
    """(id, created) per task of a batch, in the batch's order."""
    results: list[tuple[str, bool]] = [("", False)] * count
    for call, reply in zip(calls, replies, strict=True):
        for position, outcome in zip(call.positions, call_outcomes(reply, call.ids), strict=True):
            results[position] = outcome
    return results


def parse_leases(queue: str, reply: Sequence[Any]) -> tuple[int, int, list[Lease]]:
    """The dequeue script's reply: ms until the next timed event (-1: none), how many
    tasks a limit deferred, and the leases."""
    fields = iter(reply[3 : 3 + 9 * int(reply[1])])
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
    return int(reply[0]), int(reply[2]), leases


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
    )


def error_json(error_type: str, message: str, traceback: str | None) -> bytes:
    return orjson.dumps({"type": error_type, "message": message, "traceback": traceback})
