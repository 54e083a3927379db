"""When a schedule fires: a cron expression in a time zone, or a fixed interval; which of
the ticks missed while no worker ran are run (the misfire policy); and a jitter every
worker computes alike. No I/O: whoever advances a schedule's next fire time (one atomic
compare-and-advance in Redis, so that each tick runs once with no leader and no lock)
takes these instants as its arguments.

Cron semantics are cronsim's (the library healthchecks.io checks cron jobs with): times are
the zone's wall-clock times, a time that does not exist on a spring-forward day runs at the
first time after the gap, once, and a time that exists twice on a fall-back day runs at
its first occurrence, but for a job with a specific hour of ``*`` (or a step), which runs
in both. So ``30 2 * * *`` runs exactly once every day, and ``0 * * * *`` on every real
hour, the repeated one included. cronsim is small, has no dependencies, and is tested
against these transitions; croniter's maintenance has been uncertain since 2024.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from arqd.core.errors import InvalidSchedule, InvalidTask
from arqd.core.task import check_name, check_queue

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

# cronsim and zoneinfo are imported by the functions that use them: every worker imports
# this module, few declare schedules (0.35 MB of a worker's RSS; bench.compare).

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,99}")
FIELDS = ("name", "task_type", "cron", "every", "tz", "queue", "payload", "priority")
POLICY = ("misfire", "catch_up", "late_after", "jitter", "overlap")


class Misfire(StrEnum):
    """What runs when a worker finds several ticks of a schedule past (no worker ran)."""

    COALESCE = "coalesce"
    """One run, for the latest tick; the others are dropped (and counted)."""
    SKIP = "skip"
    """None of them: only a tick that is not late runs."""
    ALL = "all"
    """Each of them, oldest first, up to ``Schedule.catch_up`` of the latest."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """A task type run on a cron expression (in ``tz``) or every ``every`` seconds."""

    name: str
    task_type: str
    cron: str | None = None
    every: float | None = None
    tz: str = "UTC"
    queue: str | None = None
    payload: Any = None
    priority: int = 0
    misfire: Misfire = Misfire.COALESCE
    catch_up: int = 100  # ticks run at most, for Misfire.ALL
    late_after: float = 60.0  # seconds after its instant that a tick counts as missed
    jitter: float = 0.0  # seconds: each tick runs up to this much after its instant
    overlap: bool = True  # False: a tick is skipped while the previous run is not finished
    zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME.fullmatch(self.name):
            raise InvalidSchedule(
                f"invalid schedule name {self.name!r}: use 1-100 characters, letters, digits "
                "and _ . : -, starting with a letter or _"
            )
        try:
            check_name(self.task_type)
            if self.queue is not None:
                check_queue(self.queue)
        except InvalidTask as exc:
            raise InvalidSchedule(f"schedule {self.name!r}: {exc}") from None
        _check_timing(self)
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            object.__setattr__(self, "zone", ZoneInfo(self.tz))
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidSchedule(
                f"schedule {self.name!r}: unknown time zone {self.tz!r} (an IANA name, "
                "such as Europe/Paris or America/New_York)"
            ) from None
        object.__setattr__(self, "misfire", _misfire(self.name, self.misfire))
        if not isinstance(self.priority, int) or not -1_000_000 <= self.priority <= 1_000_000:
            raise InvalidSchedule(f"schedule {self.name!r}: priority is an integer in ±1,000,000")
        try:
            json.dumps(self.payload)
        except (TypeError, ValueError):
            raise InvalidSchedule(f"schedule {self.name!r}: the payload is not JSON") from None
        if self.catch_up < 1 or self.late_after < 0 or self.jitter < 0:
            raise InvalidSchedule(
                f"schedule {self.name!r}: catch_up is at least 1, late_after and jitter at least 0"
            )

    def to_dict(self) -> dict[str, Any]:
        """The schedule as JSON-ready values (what Redis keeps and the API shows)."""
        out = {name: getattr(self, name) for name in (*FIELDS, *POLICY)}
        out["misfire"] = self.misfire.value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schedule:
        """The schedule ``to_dict`` gave (unknown keys are refused by name)."""
        unknown = set(data) - {*FIELDS, *POLICY}
        if unknown:
            raise InvalidSchedule(f"schedule: unknown field(s) {', '.join(sorted(unknown))}")
        return cls(**data)

    def on(self, queue: str) -> Schedule:
        """This schedule with its queue set (``queue`` when it names none)."""
        return self if self.queue is not None else replace(self, queue=queue)

    @property
    def version(self) -> str:
        """A digest of the definition: equal for equal schedules, on every machine."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_timing(schedule: Schedule) -> None:
    name, cron, every = schedule.name, schedule.cron, schedule.every
    if (cron is None) == (every is None):
        raise InvalidSchedule(f"schedule {name!r}: give either cron or every, not both")
    if cron is not None:
        from cronsim import CronSim, CronSimError

        try:
            CronSim(cron, datetime(2000, 1, 1))
        except CronSimError as exc:
            raise InvalidSchedule(f"schedule {name!r}: cron {cron!r}: {exc}") from None
    if every is not None and not (math.isfinite(every) and every >= 1):
        raise InvalidSchedule(f"schedule {name!r}: every is at least 1 second")


def _misfire(name: str, value: Misfire | str) -> Misfire:
    try:
        return Misfire(value)
    except ValueError:
        choices = ", ".join(m.value for m in Misfire)
        raise InvalidSchedule(f"schedule {name!r}: misfire is one of {choices}") from None


def fire_times(schedule: Schedule, after: datetime) -> Iterator[datetime]:
    """The schedule's instants strictly after ``after``, in order, in UTC."""
    after = after.astimezone(UTC)
    if schedule.every is not None:  # anchored at the epoch: every worker agrees
        period = schedule.every
        first = math.floor(after.timestamp() / period) + 1
        for n in itertools.count(first):
            yield datetime.fromtimestamp(n * period, UTC)
    assert schedule.cron is not None
    from cronsim import CronSim

    start = after.astimezone(schedule.zone)
    for local in CronSim(schedule.cron, start):
        instant = local.astimezone(UTC)
        if instant > after:
            yield instant


def next_fire(schedule: Schedule, after: datetime) -> datetime:
    """The schedule's first instant strictly after ``after`` (UTC)."""
    return next(fire_times(schedule, after))


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """A stored schedule: its definition, its next fire time (None while paused), the
    last run (its due time and task id), and counts of runs, dropped and skipped ticks."""

    schedule: Schedule
    next_run: datetime | None
    paused: bool
    reason: str
    last_run: datetime | None
    last_task: str | None
    runs: int
    dropped: int
    skipped: int
    last_status: str | None = None  # of the last run's task (None: gone, or no run yet)


@dataclass(frozen=True, slots=True)
class Due:
    """What a worker does with a schedule whose next instant ``due`` has come: run the
    ``run`` ticks, count ``dropped`` ones as missed, and store ``next`` as its next one."""

    run: tuple[datetime, ...]
    dropped: int
    next: datetime


def due(schedule: Schedule, tick: datetime, now: datetime) -> Due | None:
    """The decision for the stored next instant ``tick`` at ``now`` (None: not yet)."""
    if tick > now:
        return None
    ticks = [tick, *itertools.takewhile(lambda t: t <= now, fire_times(schedule, tick))]
    following = next_fire(schedule, ticks[-1])
    on_time = [t for t in ticks if (now - t) <= timedelta(seconds=schedule.late_after)]
    if schedule.misfire is Misfire.COALESCE:
        return Due((ticks[-1],), len(ticks) - 1, following)
    if schedule.misfire is Misfire.SKIP:
        return Due(tuple(on_time), len(ticks) - len(on_time), following)
    kept = ticks[-schedule.catch_up :]
    return Due(tuple(kept), len(ticks) - len(kept), following)


def jitter_of(schedule: Schedule, tick: datetime) -> float:
    """Seconds the run of ``tick`` waits after its instant: the same on every worker, in
    [0, schedule.jitter), spread evenly over the schedules that share an instant."""
    if not schedule.jitter:
        return 0.0
    digest = hashlib.sha256(f"{schedule.name}\x00{_millis(tick)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * schedule.jitter


def tick_task_id(schedule: Schedule, tick: datetime) -> str:
    """The id of the task a tick enqueues: the same for every worker, so a tick enqueued
    twice is one task (the enqueue finds its id); at most 116 characters."""
    return f"s:{schedule.name}:{_millis(tick)}"


def _millis(instant: datetime) -> int:
    return round(instant.timestamp() * 1000)
