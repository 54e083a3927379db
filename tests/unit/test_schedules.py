"""Schedules' instants (``core.schedules``): cron in a time zone through both DST
transitions of Europe/Berlin and America/New_York, fixed intervals, the misfire policies
and the jitter, each held to a simple model; and every wrong schedule refused with a
message that says what to change."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim
from hypothesis import given, settings
from hypothesis import strategies as st

from arqd.core.errors import InvalidSchedule
from arqd.core.schedules import (
    Misfire,
    Schedule,
    due,
    fire_times,
    jitter_of,
    next_fire,
    tick_task_id,
)
from arqd.core.task import TASK_ID_PATTERN

# The two transition days of 2026: (zone, spring forward, fall back, the repeated hour).
TRANSITIONS = [
    ("Europe/Berlin", date(2026, 3, 29), date(2026, 10, 25), 2),
    ("America/New_York", date(2026, 3, 8), date(2026, 11, 1), 1),
]


def day_bounds(zone: str, day: date) -> tuple[datetime, datetime]:
    """The real instants a local day spans (23 or 25 hours on a transition day)."""
    tz = ZoneInfo(zone)
    start = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
    following = day + timedelta(days=1)
    end = datetime(following.year, following.month, following.day, tzinfo=tz).astimezone(UTC)
    return start, end


def fires_within(schedule: Schedule, start: datetime, end: datetime) -> list[datetime]:
    return list(
        itertools.takewhile(
            lambda t: t < end, fire_times(schedule, start - timedelta(microseconds=1))
        )
    )


@pytest.mark.parametrize(("zone", "spring", "fall", "repeated"), TRANSITIONS)
def test_a_daily_time_fires_once_on_both_transition_days(
    zone: str, spring: date, fall: date, repeated: int
) -> None:
    schedule = Schedule("nightly", "report", cron="30 2 * * *", tz=zone)
    for day in (spring, fall):
        start, end = day_bounds(zone, day)
        fired = fires_within(schedule, start, end)
        assert len(fired) == 1, (day, fired)
        local = CronSim("30 2 * * *", start.astimezone(ZoneInfo(zone)) - timedelta(minutes=1))
        assert fired[0] == next(local).astimezone(UTC)  # the library's instant


@pytest.mark.parametrize(("zone", "spring", "fall", "repeated"), TRANSITIONS)
def test_an_hourly_job_fires_on_every_real_hour_the_repeated_one_twice(
    zone: str, spring: date, fall: date, repeated: int
) -> None:
    schedule = Schedule("hourly", "report", cron="0 * * * *", tz=zone)
    for day, hours in ((spring, 23), (fall, 25)):
        start, end = day_bounds(zone, day)
        fired = fires_within(schedule, start, end)
        assert fired == [start + timedelta(hours=h) for h in range(hours)]
    start, end = day_bounds(zone, fall)
    local_hours = [t.astimezone(ZoneInfo(zone)).hour for t in fires_within(schedule, start, end)]
    assert local_hours.count(repeated) == 2


# A model of cron in UTC for a grammar of lists and steps: every minute, checked field by field.
FIELD = st.one_of(
    st.just("*"),
    st.integers(1, 15).map(lambda n: f"*/{n}"),
    st.lists(st.integers(0, 23), min_size=1, max_size=3, unique=True).map(
        lambda xs: ",".join(map(str, sorted(xs)))
    ),
)


def matches(value: int, spec: str) -> bool:
    if spec == "*":
        return True
    if spec.startswith("*/"):
        return value % int(spec[2:]) == 0
    return value in {int(x) for x in spec.split(",")}


@settings(max_examples=200, deadline=None)
@given(FIELD, FIELD, st.integers(0, 10**6))
def test_cron_in_utc_fires_on_exactly_the_minutes_a_brute_force_scan_finds(
    minute: str, hour: str, offset_min: int
) -> None:
    schedule = Schedule("m", "t", cron=f"{minute} {hour} * * *")
    after = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=offset_min, seconds=30)
    end = after + timedelta(hours=49)
    scan = after.replace(second=0) + timedelta(minutes=1)
    expected = []
    while scan < end:
        if matches(scan.minute, minute) and matches(scan.hour, hour):
            expected.append(scan)
        scan += timedelta(minutes=1)
    assert fires_within(schedule, after + timedelta(microseconds=1), end) == expected


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10_000), st.floats(0, 10**9, allow_nan=False))
def test_an_interval_fires_on_its_multiples_of_the_epoch_strictly_after(
    every: int, at: float
) -> None:
    schedule = Schedule("i", "t", every=every)
    after = datetime.fromtimestamp(at, UTC)
    first, second = itertools.islice(fire_times(schedule, after), 2)
    assert first > after
    assert first - after <= timedelta(seconds=every)
    assert round(first.timestamp()) % every == 0  # on a multiple of the epoch
    assert second - first == timedelta(seconds=every)
    assert next_fire(schedule, after) == first


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(list(Misfire)),
    st.integers(0, 500),
    st.integers(1, 50),
    st.integers(0, 120),
)
def test_the_misfire_policies_against_a_model(
    policy: Misfire, away_s: int, catch_up: int, late_after: int
) -> None:
    schedule = Schedule("p", "t", every=7, misfire=policy, catch_up=catch_up, late_after=late_after)
    tick = next_fire(schedule, datetime(2026, 1, 1, tzinfo=UTC))
    now = tick + timedelta(seconds=away_s)
    decided = due(schedule, tick, now)
    assert decided is not None
    past = [tick + timedelta(seconds=7 * n) for n in range(away_s // 7 + 1)]  # the model
    if policy is Misfire.COALESCE:
        assert decided.run == (past[-1],)
    elif policy is Misfire.SKIP:
        assert decided.run == tuple(t for t in past if (now - t).total_seconds() <= late_after)
    else:
        assert decided.run == tuple(past[-catch_up:])
    assert decided.dropped == len(past) - len(decided.run)
    assert decided.next == past[-1] + timedelta(seconds=7)
    assert due(schedule, decided.next, now) is None  # nothing more until the next instant


def test_jitter_and_tick_ids_are_the_same_on_every_worker() -> None:
    schedule = Schedule("spread", "t", cron="* * * * *", jitter=30)
    tick = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    waits = {jitter_of(schedule, tick + timedelta(minutes=n)) for n in range(200)}
    assert all(0 <= w < 30 for w in waits)
    assert len(waits) == 200  # spread, not one value
    assert jitter_of(schedule, tick) == jitter_of(
        Schedule("spread", "t", cron="* * * * *", jitter=30), tick
    )
    assert tick_task_id(schedule, tick) == "s:spread:1777636800000"
    longest = Schedule("x" * 100, "t", every=60)
    assert TASK_ID_PATTERN.fullmatch(tick_task_id(longest, tick))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cron": "61 * * * *"}, "cron '61 \\* \\* \\* \\*'"),
        ({"cron": "* * * * *", "every": 60}, "either cron or every"),
        ({}, "either cron or every"),
        ({"every": 0.5}, "at least 1 second"),
        ({"every": 60, "tz": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"every": 60, "misfire": "later"}, "misfire is one of coalesce, skip, all"),
        ({"every": 60, "catch_up": 0}, "catch_up is at least 1"),
    ],
)
def test_a_wrong_schedule_is_refused_saying_what_to_change(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidSchedule, match=message):
        Schedule("nightly", "report", **options)  # type: ignore[arg-type]


def test_a_bad_name_is_refused() -> None:
    with pytest.raises(InvalidSchedule, match="invalid schedule name 'has space'"):
        Schedule("has space", "report", every=60)
    with pytest.raises(InvalidSchedule, match="invalid schedule name"):
        Schedule("x" * 101, "report", every=60)
    with pytest.raises(InvalidSchedule, match="invalid task type"):
        Schedule("ok", "has space", every=60)
    with pytest.raises(InvalidSchedule, match="invalid queue name"):
        Schedule("ok", "report", every=60, queue="a b")
    with pytest.raises(InvalidSchedule, match="payload is not JSON"):
        Schedule("ok", "report", every=60, payload={1, 2})
    with pytest.raises(InvalidSchedule, match="priority"):
        Schedule("ok", "report", every=60, priority=10**7)


def test_a_schedule_survives_its_json_and_its_version_names_its_definition() -> None:
    schedule = Schedule("nightly", "report", cron="30 2 * * *", tz="Europe/Paris", payload=[1])
    assert Schedule.from_dict(schedule.to_dict()) == schedule
    assert Schedule.from_dict(schedule.to_dict()).version == schedule.version
    assert Schedule("nightly", "report", cron="30 3 * * *").version != schedule.version
    assert schedule.on("mail").queue == "mail"
    assert schedule.on("mail").on("other").queue == "mail"
    with pytest.raises(InvalidSchedule, match="unknown field"):
        Schedule.from_dict({**schedule.to_dict(), "colour": "red"})
