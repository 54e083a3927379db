"""Schedules as Redis keeps them, and the two calls that run them: the poll for due ones
and the compare-and-advance that fires a tick (``lua/schedule_*.lua``).

A schedule lives under its queue's hash tag, so the script that advances its next fire
time also enqueues its tick's task, on any topology: a hash ``sc:<name>`` (definition,
version, next fire time, pause, last run, counts) and the queue's sorted set ``scnext``
of next fire times. One hash over every queue, ``Keys.schedules``, says which queue holds
each name (written on its own: it lives on a slot of its own).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from arqd.core.schedules import Schedule, ScheduleState
from arqd.core.settings import Settings
from arqd.store.codec import STATUS_CODES, text
from arqd.store.keys import Keys
from arqd.store.scripts import Scripts

STATUS_OF = {code: status.value for status, code in STATUS_CODES.items()}
DUE_LIMIT = 100  # due schedules per queue a poll returns (the rest on the next)


@dataclass(frozen=True, slots=True)
class DueSchedule:
    """A schedule whose stored next fire time ``tick`` has come (``version``: of the
    definition the fire must still find)."""

    schedule: Schedule
    version: str
    tick: datetime


@dataclass(frozen=True, slots=True)
class Poll:
    """What a poll found: Redis's time, the due schedules, the soonest next time, and the
    queues whose workflow notices or outboxes hold something (see ``relay``)."""

    now: datetime
    due: list[DueSchedule]
    soonest: datetime | None
    relay: list[str]


@dataclass(frozen=True, slots=True)
class Tick:
    """One task a fire enqueues: its id and when it is due (the tick plus its jitter)."""

    task_id: str
    due: datetime


class Schedules:
    """Every change is one script on the schedule's queue; reads are plain commands on the
    shared connection of their node (``Scripts.on_key``)."""

    def __init__(self, scripts: Scripts, keys: Keys, settings: Settings) -> None:
        self.scripts = scripts
        self.keys = keys
        self.settings = settings

    async def upsert(self, schedule: Schedule, next_run: datetime) -> bool:
        """Store ``schedule`` (its queue set); False when it was there as it is."""
        queue = _queue_of(schedule)
        index = self.keys.schedules()
        before = await self.scripts.on_key("HGET", index, schedule.name)
        if before is not None and text(before) != queue:  # moved to another queue
            await self._change(text(before), schedule.name, "delete")
        await self.scripts.on_key("SADD", self.keys.queues(), queue)
        await self.scripts.on_key("HSET", index, schedule.name, queue)
        definition = orjson.dumps(schedule.to_dict())
        return await self._change(
            queue, schedule.name, "upsert", definition, schedule.version, _ms(next_run)
        )

    async def pause(self, queue: str, name: str, reason: str) -> bool:
        return await self._change(queue, name, "pause", reason)

    async def resume(self, queue: str, name: str, next_run: datetime) -> bool:
        return await self._change(queue, name, "resume", _ms(next_run))

    async def delete(self, queue: str, name: str) -> bool:
        deleted = await self._change(queue, name, "delete")
        await self.scripts.on_key("HDEL", self.keys.schedules(), name)
        return deleted

    async def _change(self, queue: str, name: str, op: str, *args: Any) -> bool:
        keys = [self.keys.queue(queue)]
        events = self.settings.events_max
        return bool(await self.scripts.run("schedule_upsert", keys, events, name, op, *args))

    async def queue_of(self, name: str) -> str | None:
        """The queue that holds the schedule ``name`` (None: there is none)."""
        queue = await self.scripts.on_key("HGET", self.keys.schedules(), name)
        return text(queue) if queue is not None else None

    async def get(self, name: str) -> ScheduleState | None:
        queue = await self.queue_of(name)
        if queue is None:
            return None
        found = await self._read([(name, queue)])
        return found[0] if found else None

    async def all(self) -> list[ScheduleState]:
        """Every schedule, by name."""
        where = await self.scripts.hash(self.keys.schedules())
        return await self._read(sorted((text(n), text(q)) for n, q in where.items()))

    async def _read(self, names: Sequence[tuple[str, str]]) -> list[ScheduleState]:
        """The schedules of (name, queue) pairs that exist, with their last run's status."""
        hashes = await asyncio.gather(
            *(self.scripts.hash(self.keys.schedule(q, n)) for n, q in names)
        )
        states = [state for h in hashes if (state := _state(h)) is not None]
        statuses = await asyncio.gather(*(self._status(state) for state in states))
        return [replace(s, last_status=status) for s, status in zip(states, statuses, strict=True)]

    async def _status(self, state: ScheduleState) -> str | None:
        if state.last_task is None:
            return None
        key = self.keys.task(_queue_of(state.schedule), state.last_task)
        code = await self.scripts.on_key("HGET", key, "s")
        return STATUS_OF.get(code) if isinstance(code, bytes) else None

    async def poll(self, queues: Sequence[str]) -> Poll:
        """The due schedules of ``queues``: one call for the queues of each Redis slot
        (so one in all on one server), at once."""
        groups: dict[int, list[str]] = {}
        for queue in queues:
            groups.setdefault(self.keys.slot(queue), []).append(queue)
        replies = await asyncio.gather(
            *(
                self.scripts.run("schedule_due", [self.keys.queue(q) for q in group], DUE_LIMIT)
                for group in groups.values()
            )
        )
        due: list[DueSchedule] = []
        soonest: list[int] = []
        relay: list[str] = []
        now = 0
        for group, reply in zip(groups.values(), replies, strict=True):
            now = max(now, int(reply[0]))
            if int(reply[1]) >= 0:
                soonest.append(int(reply[1]))
            relay += [group[int(position) - 1] for position in reply[2]]
            for i in range(3, len(reply), 5):
                definition = Schedule.from_dict(orjson.loads(reply[i + 2]))
                due.append(DueSchedule(definition, text(reply[i + 3]), _at(int(reply[i + 4]))))
        return Poll(_at(now), due, _at(min(soonest)) if soonest else None, relay)

    async def fire(
        self, due: DueSchedule, ticks: Sequence[Tick], following: datetime, dropped: int
    ) -> str:
        """Advance ``due``'s schedule to ``following`` and enqueue ``ticks``, if no one else
        did first: 'fired', 'stale' (someone did, or it changed) or 'overlap' (skipped)."""
        schedule = due.schedule
        payload = orjson.dumps(schedule.payload)
        args: list[Any] = [
            self.settings.events_max,
            schedule.name,
            _ms(due.tick),
            due.version,
            _ms(following),
            dropped,
            int(schedule.overlap),
            len(ticks),
        ]
        for tick in ticks:
            args += [tick.task_id, schedule.task_type, payload, schedule.priority, _ms(tick.due)]
        keys = [self.keys.queue(_queue_of(schedule))]
        reply = await self.scripts.run_acked("schedule_fire", keys, *args)
        return text(reply[0])


def _queue_of(schedule: Schedule) -> str:
    assert schedule.queue is not None, "a stored schedule names its queue (Schedule.on)"
    return schedule.queue


def _state(h: Mapping[Any, Any]) -> ScheduleState | None:
    if b"def" not in h:
        return None

    def number(field: bytes) -> int:
        return int(h.get(field, 0))

    return ScheduleState(
        schedule=Schedule.from_dict(orjson.loads(h[b"def"])),
        next_run=_at(number(b"next")) if b"next" in h else None,
        paused=b"paused" in h,
        reason=text(h.get(b"reason", b"")),
        last_run=_at(number(b"last")) if b"last" in h else None,
        last_task=text(h[b"ltask"]) if b"ltask" in h else None,
        runs=number(b"runs"),
        dropped=number(b"dropped"),
        skipped=number(b"skipped"),
    )


def _ms(instant: datetime) -> str:
    return str(round(instant.timestamp() * 1000))


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
