"""Workflows as Redis keeps them (``lua/workflow_start.lua`` and the workflow helpers of
``lua/common.lua``), under their queue's hash tag: a hash ``wf:<id>`` (status, steps, the
current step's counters, the records of steps not started) and a string ``wf:<id>:o``
with one byte per member, how it ended. A member is a task of the queue whose field
``wf`` names its workflow and its byte; every script that ends a task (finish, cancel,
dequeue's lapse and expiry paths) counts its end there, once, and starts the next step
in the same call. A member on another queue (another slot on a Redis Cluster) starts
through the workflow's outbox and reports its end through a notice on its own queue,
both carried over by ``arqd.store.relay``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from arqd.core.settings import Settings
from arqd.core.task import NewTask, check_queue
from arqd.core.workflows import MemberState, Step, StepState, WorkflowState
from arqd.store.codec import STATUS_CODES, dumps_payload, text
from arqd.store.keys import Keys
from arqd.store.scripts import Scripts

US, RS = b"\x1f", b"\x1e"  # between a member record's fields, and between records
STATUS_OF = {code: status.value for status, code in STATUS_CODES.items()}
WORKFLOW_STATUS = {b"r": "running", b"ok": "succeeded", b"f": "failed", b"x": "cancelled"}


def member_record(task: NewTask, payload_limit: int, first: bool, home: str) -> bytes:
    """One member as workflow_member (common.lua) reads it: type, payload ('' when a
    later step's member takes the previous result), prio, maxr, tmo, rttl, expin, and its
    queue ('' when it runs on the workflow's, ``home``)."""
    data = b"" if task.payload is None and not first else dumps_payload(task.payload, payload_limit)
    if US in data or RS in data:  # JSON escapes control characters: never, but be sure
        raise ValueError("a payload's JSON holds a control character")
    return US.join(
        (
            task.type.encode(),
            data,
            _number(task.priority or None),
            _number(task.max_retries),
            _number(None if task.timeout is None else round(task.timeout * 1000)),
            _number(None if task.result_ttl is None else round(task.result_ttl * 1000)),
            _number(None if task.expires_in is None else round(task.expires_in * 1000)),
            _elsewhere(task, home).encode(),
        )
    )


def _elsewhere(task: NewTask, home: str) -> str:
    """The queue ``task`` runs on when not its workflow's ``home``, else ''."""
    return "" if task.queue in (None, home) else str(task.queue)


def step_queues(step: Step, home: str) -> bytes:
    """Each member's queue ('' for ``home``), by \x1f; b'' when every member runs home."""
    queues = [_elsewhere(m, home) for m in step.members]
    return US.join(q.encode() for q in queues) if any(queues) else b""


def _number(value: int | None) -> bytes:
    return b"" if value is None else b"%d" % value


def member_id(workflow_id: str, step: int | str, position: int) -> str:
    """A member's task id: the workflow's, its step's and its place in the step."""
    return f"{workflow_id}.{step}.{position}"


@dataclass(frozen=True, slots=True)
class WorkflowCancel:
    """The cancel script's answer: whether the workflow was there, the status it had
    ended in (None: it was running, and is cancelled now), members cancelled at once and
    running ones asked to stop."""

    found: bool
    ended: str | None = None
    cancelled: int = 0
    asked: int = 0


def decode_cancel(reply: Sequence[bytes | int]) -> WorkflowCancel:
    kind = text(reply[0])
    if kind == "missing":
        return WorkflowCancel(False)
    if kind == "ended":
        return WorkflowCancel(True, text(reply[1]))
    return WorkflowCancel(True, None, int(reply[1]), int(reply[2]))


class Workflows:
    """The start is one script; reads are plain commands."""

    def __init__(self, scripts: Scripts, keys: Keys, settings: Settings) -> None:
        self.scripts = scripts
        self.redis = scripts.redis
        self.keys = keys
        self.settings = settings

    async def start(
        self, queue: str, workflow_id: str, steps: Sequence[Step], on_error: NewTask | None
    ) -> bool:
        """Create the workflow and enqueue its first step (one round trip); False when a
        workflow of this id was there already."""
        s = self.settings
        limit = s.max_payload_bytes
        args: list[bytes | str | int] = [s.events_max, workflow_id, max(s.result_ttl, s.failed_ttl)]
        args.append(b"" if on_error is None else member_record(on_error, limit, False, queue))
        args.append(len(steps))
        for k, step in enumerate(steps):
            records = RS.join(member_record(m, limit, k == 0, queue) for m in step.members)
            args += [step.policy, "1" if step.is_group else "0", len(step.members), records]
            args.append(step_queues(step, queue))
        elsewhere = {m.queue for step in steps for m in step.members} | {
            on_error and on_error.queue
        }
        named = sorted({queue} | {q for q in elsewhere if q})
        await self.scripts.on_key("SADD", self.keys.queues(), *named)
        reply = await self.scripts.run_acked("workflow_start", [self.keys.queue(queue)], *args)
        return bool(reply)

    async def cancel(self, queue: str, workflow_id: str) -> WorkflowCancel:
        """Cancel a running workflow (see workflow_cancel.lua)."""
        s = self.settings
        args = (s.events_max, workflow_id, s.finished_index_max, s.result_ttl)
        reply = await self.scripts.run_acked("workflow_cancel", [self.keys.queue(queue)], *args)
        return decode_cancel(reply)

    async def queue_of(self, workflow_id: str, queues: Sequence[str]) -> str | None:
        """The queue among ``queues`` that holds the workflow (None: none does)."""
        pipe = self.redis.pipeline(transaction=False)
        for queue in queues:
            pipe.exists(self.keys.workflow(queue, workflow_id))
        found = await pipe.execute()
        return next((q for q, there in zip(queues, found, strict=True) if there), None)

    async def get(self, queue: str, workflow_id: str) -> WorkflowState | None:
        """The workflow with each member's status (one round trip for the workflow, one
        for its started members, each read on its own queue)."""
        fields: Mapping[bytes, bytes] = await self.redis.hgetall(  # type: ignore[assignment]
            self.keys.workflow(queue, workflow_id)
        )
        if not fields:
            return None
        current = int(fields.get(b"k", b"0"))
        places = _places(queue, workflow_id, fields)
        started = [m for k in range(current + 1) for m in places[k]]
        fails = int(fields.get(b"fails", b"0"))
        on_error = _error_queue(queue, fields)
        started += [(member_id(workflow_id, f"err.{n}", 0), on_error) for n in range(1, fails + 1)]
        statuses = await self._statuses(started)
        return _state(check_queue(queue), workflow_id, fields, places, statuses)

    async def _statuses(self, members: Sequence[tuple[str, str]]) -> dict[str, str]:
        pipe = self.redis.pipeline(transaction=False)
        for task_id, queue in members:
            pipe.hget(self.keys.task(queue, task_id), "s")
        codes = await pipe.execute()
        found = zip(members, codes, strict=True)
        return {i: STATUS_OF.get(c, "gone") for (i, _), c in found if c}


def _places(
    queue: str, workflow_id: str, fields: Mapping[bytes, bytes]
) -> list[list[tuple[str, str]]]:
    """Per step, each member's id and queue (field q<k>: the queues of a step with members
    on other queues)."""
    out = []
    for k in range(int(fields[b"ns"])):
        ids = [member_id(workflow_id, k, i) for i in range(int(fields[b"n%d" % k]))]
        named = fields[b"q%d" % k].split(US) if b"q%d" % k in fields else [b""] * len(ids)
        queues = [text(q) or queue for q in named]
        out.append(list(zip(ids, queues, strict=True)))
    return out


def _error_queue(queue: str, fields: Mapping[bytes, bytes]) -> str:
    """The queue of the error callback: its record's last field, or ``queue``."""
    record = fields.get(b"err", b"").split(US)
    return text(record[7]) if len(record) > 7 and record[7] else queue


def _state(
    queue: str,
    workflow_id: str,
    fields: Mapping[bytes, bytes],
    places: Sequence[Sequence[tuple[str, str]]],
    statuses: Mapping[str, str],
) -> WorkflowState:
    steps = []
    current = int(fields.get(b"k", b"0"))
    for k, members in enumerate(places):
        found = []
        for i, there in members:
            elsewhere = None if there == queue else there
            # not started; in the outbox (a member on another queue); or expired
            missing = "pending" if k > current or (k == current and elsewhere) else "gone"
            found.append(MemberState(i, statuses.get(i, missing), elsewhere))
        policy = text(fields[b"p%d" % k])
        steps.append(StepState(fields[b"g%d" % k] == b"1", policy, found))
    fails = int(fields.get(b"fails", b"0"))
    errors = [member_id(workflow_id, f"err.{n}", 0) for n in range(1, fails + 1)]
    on_error = _error_queue(queue, fields)
    elsewhere = None if on_error == queue else on_error
    return WorkflowState(
        id=workflow_id,
        queue=queue,
        status=WORKFLOW_STATUS.get(fields[b"st"], text(fields[b"st"])),
        step=current,
        steps=steps,
        error_callbacks=[
            MemberState(i, statuses.get(i, "pending" if elsewhere else "gone"), elsewhere)
            for i in errors
        ],
    )
