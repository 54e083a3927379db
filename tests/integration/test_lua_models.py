"""The Lua breaker and GCRA against their pure Python references, step by step.

Random sequences of operations run through the real scripts on a real Redis and through
``resilience/breaker.py`` / ``resilience/ratelimit.py``; after every step the answers and
the stored state must be the same. The clock is injected: the test takes each script's
source as production builds it (``scripts.source``) and swaps its ``now_ms`` helper for one
that reads the time from the last ARGV (every script reads its ARGV by position, so one
more at the end changes nothing else). The production scripts carry no test hook.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from arqd.resilience.breaker import Breaker, Outcome, State, allow, record, settle
from arqd.resilience.ratelimit import gcra, reserve
from arqd.store import scripts
from conftest import RedisServer

# Deterministic (the same examples on every run), and enough of them to reach the corners.
EXAMPLES = 250
MODELS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
START = 1_767_225_600_000  # the injected clock's first reading, ms
EVENTS_CAP = 1000
_NOW_MS = re.compile(r"^local function now_ms\(\)\n.*?^end\n", re.MULTILINE | re.DOTALL)
_CLOCK = "local function now_ms()\n  return tonumber(ARGV[#ARGV]), ARGV[#ARGV]\nend\n"
_counter = itertools.count()


def with_clock(lua: str) -> str:
    """``lua`` with its clock read from the last ARGV."""
    swapped, n = _NOW_MS.subn(_CLOCK, lua)
    assert n == 1, "the script has no now_ms helper to swap"
    return swapped


@pytest.fixture(scope="module")
def r(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis(port=redis_server.port)
    yield client
    client.close()


def unique(kind: str) -> str:
    return f"lua-models:{kind}:{next(_counter)}"


def stored_tat(tat: float) -> float:
    """A TAT as the Lua stores it (``%.3f``): what the next step reads back."""
    return float(f"{tat:.3f}")


# Breakers: named (breaker.lua) and task types' (dequeue.lua, finish.lua).

OUTCOMES = {"ok": Outcome.SUCCESS, "fail": Outcome.FAILURE, "neutral": Outcome.NEUTRAL}
EVENT_OF = {
    State.CLOSED: b"breaker_closed",
    State.OPEN: b"breaker_opened",
    State.HALF_OPEN: b"breaker_half_open",
}


@st.composite
def breaker_runs(draw: st.DrawFn, ops: list[str]) -> tuple[int, int, list[tuple[str, int]]]:
    """A threshold, an open time, and steps (op, ms the clock moves first); moves of
    exactly the open time or a ms either side reach the boundary of the open state."""
    threshold = draw(st.integers(1, 6))
    open_ms = draw(st.integers(1, 60_000))
    moves = st.one_of(
        st.sampled_from([0, 1, open_ms - 1, open_ms, open_ms + 1]),
        st.integers(0, 2 * open_ms),
    )
    steps = draw(st.lists(st.tuples(st.sampled_from(ops), moves), max_size=40))
    return threshold, open_ms, steps


def stored_breaker(fields: list[bytes | None]) -> Breaker:
    state, fails, until, trial = fields
    return Breaker(State(int(state or 0)), int(fails or 0), float(until or 0), trial == b"1")


@MODELS
@given(breaker_runs(["allow", "ok", "fail", "neutral", "reset"]))
def test_named_breaker_script_is_the_model(
    r: redis.Redis, run: tuple[int, int, list[tuple[str, int]]]
) -> None:
    threshold, open_ms, steps = run
    script = r.register_script(with_clock(scripts.source("breaker")))
    key, names, events, name = unique("b"), unique("names"), unique("events"), unique("n")
    b, now, expected_events = Breaker(), START, []
    for op, move in steps:
        now += move
        before = b
        if op == "allow":
            allowed, b, retry = allow(b, now)
            answer = [int(allowed), int(retry), int(b.state)]
        else:
            b = Breaker() if op == "reset" else record(b, OUTCOMES[op], now, threshold, open_ms)
            answer = [1, 0, int(b.state)]
        if op == "reset":
            expected_events.append((b"breaker_reset", b"0"))
        elif b.state is not before.state:
            expected_events.append((EVENT_OF[b.state], b"%d" % b.state))
        pipe = r.pipeline(transaction=False)
        args: list[str | int] = [op, threshold, open_ms, EVENTS_CAP, name, now]
        script(keys=[key, names, events], args=args, client=pipe)
        pipe.hmget(key, "state", "fails", "until", "trial")
        got, fields = pipe.execute()
        assert got == answer, (op, now, before)
        assert stored_breaker(fields) == b, (op, now, before)
    entries: Any = r.xrange(events)
    stream = [(e[b"event"], e[b"state"]) for _, e in entries]
    assert stream == expected_events
    counts = r.hmget(key, "to_closed", "to_open", "to_half_open")
    moved_to = [sum(e in group for e, _ in stream) for group in _TO]
    assert [int(c or 0) for c in counts] == moved_to
    if any(op in ("fail", "reset") for op, _ in steps):
        assert r.sismember(names, name)


_TO = (
    {b"breaker_closed", b"breaker_reset"},
    {b"breaker_opened"},
    {b"breaker_half_open"},
)


@dataclass
class TypeBreakerModel:
    """A task type's breaker as dequeue and finish wrap the model: ready and held tasks
    (counts), leased ones, and which of them is the half-open trial."""

    threshold: int
    open_ms: int
    b: Breaker = field(default_factory=Breaker)
    ready: int = 0
    held: int = 0
    leased: list[str] = field(default_factory=list)
    trial: str | None = None
    half_opened: int = 0  # transitions to half-open (each a breaker_half_open event)

    def take(self, now: int, next_id: str) -> tuple[int, int]:
        """Dequeue of one task: (leased, held). First the breaker settles (an open one
        whose time has come is half-open), and a half-open one with its trial slot free
        releases one held task; refused tasks are held until one is admitted."""
        self.settle(now)
        deferred = 0
        while self.ready:
            self.ready -= 1
            allowed, self.b, _ = allow(self.b, now)
            if allowed:
                self.leased.append(next_id)
                if self.b.state is State.HALF_OPEN:
                    self.trial = next_id
                return 1, deferred
            self.held, deferred = self.held + 1, deferred + 1
        return 0, deferred

    def settle(self, now: int) -> None:
        """What every dequeue does first, with or without a task to take."""
        before, self.b = self.b, settle(self.b, now)
        self.half_opened += before.state is not self.b.state
        if self.b.state is State.HALF_OPEN and not self.b.trial and self.held:
            self.held, self.ready = self.held - 1, self.ready + 1

    def finish(self, task: str, signal: str, now: int) -> None:
        self.leased.remove(task)
        was_trial, self.trial = task == self.trial, None if task == self.trial else self.trial
        if signal == "neutral" and not was_trial:
            return  # only the trial's neutral end is recorded: it frees the trial slot
        before = self.b
        self.b = record(before, OUTCOMES[signal], now, self.threshold, self.open_ms)
        if self.b.state is State.CLOSED and before.state is State.HALF_OPEN:
            self.ready, self.held = self.ready + self.held, 0
        elif signal == "neutral" and before.state is State.HALF_OPEN and self.held:
            self.ready, self.held = self.ready + 1, self.held - 1


# One worker slot, leases that never lapse, no limited types (see dequeue.lua's header).
DEQUEUE_ARGS = (1, 10**12, "w", EVENTS_CAP, 3, 100, 60_000, 60_000, 100, 0)


class TypeBreakerRedis:
    """The same operations through the real enqueue, dequeue and finish scripts."""

    def __init__(self, r: redis.Redis, threshold: int, open_ms: int) -> None:
        self.r, self.threshold, self.open_ms = r, threshold, open_ms
        self.prefix = f"{unique('q')}:{{q}}:"
        self.scripts = {
            name: r.register_script(with_clock(scripts.source(name)))
            for name in ("enqueue", "dequeue", "finish")
        }
        self.tokens: dict[str, bytes] = {}

    def call(self, name: str, now: int, *args: Any) -> Any:
        return self.scripts[name](keys=[self.prefix], args=[*args, now])

    def enqueue(self, task: str, now: int) -> None:
        self.call("enqueue", now, EVENTS_CAP, 1, task, "T", "{}", 0)

    def take(self, now: int) -> tuple[list[str], int]:
        # One worker slot, leases that never lapse; type T has no limit but its breaker.
        reply = self.call("dequeue", now, *DEQUEUE_ARGS)
        ids = [reply[i].decode() for i in range(8, len(reply), 9)]
        for i, task in zip(range(8, len(reply), 9), ids, strict=True):
            self.tokens[task] = b"%d" % reply[i + 1]
        assert reply[2:4] == [0, 0]  # nothing throttled or held by a concurrency limit
        return ids, int(reply[4])

    def idle(self, now: int) -> int:
        """A dequeue with nothing ready (an idle worker woken by the next timed event):
        the ms until that event, -1 for none."""
        assert self.r.llen(self.prefix + "q:0") == 0
        reply = self.call("dequeue", now, *DEQUEUE_ARGS)
        assert reply[1] == 0
        return int(reply[0])

    def half_open_events(self) -> int:
        entries: Any = self.r.xrange(self.prefix + "events")
        return sum(fields[b"event"] == b"breaker_half_open" for _, fields in entries)

    def finish(self, task: str, signal: str, now: int) -> None:
        outcome = "cancelled" if signal == "neutral" else "succeeded"
        fields = [task.encode(), self.tokens.pop(task), outcome.encode(), b"null", b"0"]
        fields += [signal.encode(), b"%d" % self.threshold, b"%d" % self.open_ms]
        answer = b"\x1f".join(fields)
        assert self.call("finish", now, EVENTS_CAP, 100, 100, 60_000, 60_000, answer, b"")

    def state(self) -> tuple[Breaker, int, int]:
        pipe = self.r.pipeline(transaction=False)
        pipe.hmget(self.prefix + "cb:T", "state", "fails", "until", "trial")
        pipe.llen(self.prefix + "q:0")
        pipe.llen(self.prefix + "held:T")
        fields, ready, held = pipe.execute()
        return stored_breaker(fields), ready, held


# A trial still running when its half-open period ended (a non-trial failure reopened the
# breaker) ends neither way during the next period: it must not free that period's trial.
STALE_TRIAL = [("take", 0), ("take", 0), ("fail", 0), ("take", 1000), ("fail", 0)]
STALE_TRIAL += [("take", 1000), ("neutral", 0), ("take", 0)]


# The open period passes with no task ready: the idle dequeue turns the breaker half-open.
IDLE_HALF_OPEN = [("take", 0), ("fail", 0), ("idle", 999), ("idle", 1), ("take", 0), ("ok", 0)]


@MODELS
@given(breaker_runs(["take", "ok", "fail", "neutral", "idle"]))
@example((1, 1000, STALE_TRIAL))
@example((1, 1000, IDLE_HALF_OPEN))
def test_task_type_breaker_in_dequeue_and_finish_is_the_model(
    r: redis.Redis, run: tuple[int, int, list[tuple[str, int]]]
) -> None:
    threshold, open_ms, steps = run
    model, lua = TypeBreakerModel(threshold, open_ms), TypeBreakerRedis(r, threshold, open_ms)
    now, ids = START, (f"t{n}" for n in itertools.count())
    for op, move in steps:
        now += move
        if op == "idle":  # a worker with nothing to take dequeues (woken by the next event)
            if not model.ready and not model.held:
                next_event = lua.idle(now)
                model.settle(now)
                if model.b.state is State.OPEN:  # it wakes when the open period ends
                    assert next_event == model.b.open_until - now, (op, now)
                else:  # nothing timed, or only the far lease deadline
                    assert next_event < 0 or next_event > 10**11, (op, now)
        elif op == "take":
            if not model.ready:  # a task to take: one dequeue, one admission decision
                model.ready += 1
                lua.enqueue(next(ids), now)
            leased, deferred = lua.take(now)
            expected = model.take(now, leased[0] if leased else "")
            assert (len(leased), deferred) == expected, (op, now)
        elif model.leased:  # the oldest running task ends with this breaker signal
            task = model.leased[0]
            model.finish(task, op, now)
            lua.finish(task, op, now)
        assert lua.state() == (model.b, model.ready, model.held), (op, now)
        assert lua.half_open_events() == model.half_opened, (op, now)


# GCRA: the HTTP and task rate limits (ratelimit.lua) and dequeue's reservation.


@st.composite
def gcra_runs(draw: st.DrawFn) -> tuple[float, int, list[int | None]]:
    """An interval (ms, often not a whole number), a burst, and clock moves (None: move to
    the moment the last refused token was promised, the boundary of the next one).

    Intervals are 30 s or more: the Lua sets a TTL (in Redis's own clock) just past the
    TAT, and the test's steps take far less real time, so no key expires under it."""
    interval = draw(
        st.one_of(
            st.integers(30_000, 600_000).map(float),
            st.builds(
                lambda ms, n: ms / n, st.integers(60_000, 3_600_000), st.integers(1, 120)
            ).filter(lambda ms: ms >= 30_000),
        )
    )
    burst = draw(st.integers(1, 5))
    move = st.one_of(st.none(), st.just(0), st.integers(0, math.ceil(interval * 2)))
    return interval, burst, draw(st.lists(move, min_size=1, max_size=40))


@MODELS
@given(gcra_runs(), st.lists(st.integers(1, 2), min_size=40, max_size=40))
def test_ratelimit_script_is_gcra(
    r: redis.Redis, run: tuple[float, int, list[int | None]], takes: list[int]
) -> None:
    interval, burst, moves = run
    script = r.register_script(with_clock(scripts.source("ratelimit")))
    key = unique("rl")
    tat: float | None = None
    now, wait = START, 0
    for move, n in zip(moves, takes, strict=False):
        now += wait if move is None else move
        answer = []
        for _ in range(n):  # the same key twice in a call: its second token after its first
            d = gcra(tat, now, interval, burst)
            tat = stored_tat(d.tat) if d.allowed else tat
            retry = math.ceil(d.retry_after_ms)
            answer += [int(d.allowed), retry, d.remaining, math.ceil(d.reset_ms)]
            wait = math.ceil(d.retry_after_ms) or wait
        got = script(keys=[key] * n, args=[interval, burst] * n + [now])
        assert got == answer, (now, tat)
        assert float(r.get(key) or "nan") == tat
    assert r.pttl(key) > 0


@MODELS
@given(gcra_runs())
def test_reserving_a_slot_is_gcra_reserve(
    r: redis.Redis, run: tuple[float, int, list[int | None]]
) -> None:
    interval, burst, moves = run
    body = (
        "local wait = gcra_take(KEYS[1], now_ms(), tonumber(ARGV[1]), tonumber(ARGV[2]), true)\n"
        "return string.format('%.17g', wait)\n"
    )
    script = r.register_script(with_clock(scripts.with_helpers(body)))
    key = unique("rsv")
    tat: float | None = None
    now, wait = START, 0.0
    for move in moves:
        now += math.ceil(wait) if move is None else move
        tat, wait = reserve(tat, now, interval, burst)
        tat = stored_tat(tat)
        got = script(keys=[key], args=[interval, burst, now])
        assert float(got) == wait, (now, tat)
        assert float(r.get(key) or "nan") == tat
