"""The breaker state machine, with a fake clock (milliseconds)."""

from hypothesis import given
from hypothesis import strategies as st

from arqd.core.errors import CircuitOpen, NonRetryable
from arqd.resilience.breaker import (
    TRIAL_WAIT_MS,
    Breaker,
    Outcome,
    State,
    allow,
    counts_by_default,
    record,
    settle,
)

THRESHOLD, OPEN_MS = 5, 30_000


def fail(b: Breaker, now: float) -> Breaker:
    return record(b, Outcome.FAILURE, now, THRESHOLD, OPEN_MS)


def test_opens_after_threshold_failures_in_a_row() -> None:
    b = Breaker()
    for n in range(4):
        b = fail(b, now=n)
        assert b.state is State.CLOSED
    b = fail(b, now=4)
    assert b.state is State.OPEN
    assert b.open_until == 4 + OPEN_MS


def test_a_success_resets_the_count() -> None:
    b = Breaker()
    for n in range(4):
        b = fail(b, now=n)
    b = record(b, Outcome.SUCCESS, 5, THRESHOLD, OPEN_MS)
    assert b == Breaker()
    for n in range(4):
        b = fail(b, now=10 + n)
    assert b.state is State.CLOSED


def test_open_refuses_until_the_timeout_then_lets_one_trial_through() -> None:
    b = Breaker(State.OPEN, 5, open_until=1000)
    allowed, b, retry = allow(b, now=400)
    assert (allowed, b.state, retry) == (False, State.OPEN, 600)
    allowed, b, _ = allow(b, now=1000)
    assert (allowed, b.state, b.trial) == (True, State.HALF_OPEN, True)
    allowed, b, retry = allow(b, now=1001)
    assert (allowed, retry) == (False, TRIAL_WAIT_MS)


def test_trial_success_closes_and_failure_reopens() -> None:
    half_open = Breaker(State.HALF_OPEN, 5, 1000, trial=True)
    assert record(half_open, Outcome.SUCCESS, 1200, THRESHOLD, OPEN_MS) == Breaker()
    reopened = record(half_open, Outcome.FAILURE, 1200, THRESHOLD, OPEN_MS)
    assert (reopened.state, reopened.open_until, reopened.trial) == (State.OPEN, 31_200, False)


def test_a_neutral_trial_frees_the_slot_for_another() -> None:
    half_open = Breaker(State.HALF_OPEN, 5, 1000, trial=True)
    freed = record(half_open, Outcome.NEUTRAL, 1200, THRESHOLD, OPEN_MS)
    assert (freed.state, freed.trial) == (State.HALF_OPEN, False)
    allowed, again, _ = allow(freed, 1201)
    assert allowed
    assert again.trial


def test_late_results_while_open_change_nothing() -> None:
    b = Breaker(State.OPEN, 5, 1000)
    assert record(b, Outcome.SUCCESS, 10, THRESHOLD, OPEN_MS) == b
    assert fail(b, 10) == b


def test_bad_input_and_other_breakers_do_not_count() -> None:
    assert counts_by_default(ConnectionError("down"))
    assert not counts_by_default(NonRetryable("bad payload"))
    assert not counts_by_default(CircuitOpen("payments", 1.0))


events = st.lists(
    st.tuples(st.sampled_from(["allow", "ok", "fail", "neutral"]), st.integers(0, 5_000)),
    max_size=60,
)


@given(events)
def test_invariants_hold_for_any_sequence(steps: list[tuple[str, int]]) -> None:
    b, now = Breaker(), 0
    for op, dt in steps:
        now += dt
        if op == "allow":
            allowed, b, retry = allow(b, now)
            assert allowed or retry > 0
        else:
            b = record(
                b,
                Outcome[{"ok": "SUCCESS", "fail": "FAILURE"}.get(op, "NEUTRAL")],
                now,
                THRESHOLD,
                OPEN_MS,
            )
        assert b.state is not State.CLOSED or (b.failures < THRESHOLD and not b.trial)
        assert not b.trial or b.state is State.HALF_OPEN


def test_an_open_breaker_settles_half_open_with_no_call_once_its_time_is_up() -> None:
    b = Breaker(State.OPEN, THRESHOLD, open_until=OPEN_MS)
    assert settle(b, OPEN_MS - 1) == b
    settled = settle(b, OPEN_MS)
    assert (settled.state, settled.trial) == (State.HALF_OPEN, False)
    assert settle(settled, OPEN_MS + 1) == settled
    allowed, trial, _ = allow(settled, OPEN_MS + 1)  # the next call is the trial
    assert allowed
    assert trial == allow(b, OPEN_MS + 1)[1]  # as if it had asked while open
