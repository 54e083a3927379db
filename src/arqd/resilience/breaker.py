"""The circuit breaker's state machine, pure: the reference the Lua scripts follow.

    CLOSED --(threshold failures in a row)--> OPEN --(timeout passes)--> HALF_OPEN
    HALF_OPEN --(its one trial succeeds)--> CLOSED
    HALF_OPEN --(its one trial fails)--> OPEN

While OPEN nothing passes; HALF_OPEN lets one trial through at a time. A trial that ends
neither way (cancelled, handed back, its worker lost) frees the slot for another trial.
Times are milliseconds. The numeric states are the values of ``arq_circuit_breaker_state``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import IntEnum

from arqd.core.errors import CircuitOpen, NonRetryable

TRIAL_WAIT_MS = 1000  # how soon a refused caller may ask again while a trial runs


class State(IntEnum):
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class Outcome(IntEnum):
    SUCCESS = 0
    FAILURE = 1
    NEUTRAL = 2


@dataclass(frozen=True, slots=True)
class Breaker:
    """One breaker's stored state."""

    state: State = State.CLOSED
    failures: int = 0
    open_until: float = 0.0
    trial: bool = False


def allow(b: Breaker, now: float) -> tuple[bool, Breaker, float]:
    """May a call pass at ``now``? Returns (allowed, new state, retry after ms)."""
    if b.state is State.CLOSED:
        return True, b, 0.0
    if b.state is State.OPEN:
        if now < b.open_until:
            return False, b, b.open_until - now
        return True, replace(b, state=State.HALF_OPEN, trial=True), 0.0
    if b.trial:
        return False, b, float(TRIAL_WAIT_MS)
    return True, replace(b, trial=True), 0.0


def settle(b: Breaker, now: float) -> Breaker:
    """The state at ``now`` with no call asking: an open breaker whose timeout has passed
    is half-open, its trial slot free (``allow`` then takes the trial). Task types'
    breakers settle on every dequeue, so they report half-open without waiting for a task."""
    if b.state is State.OPEN and now >= b.open_until:
        return replace(b, state=State.HALF_OPEN, trial=False)
    return b


def record(b: Breaker, outcome: Outcome, now: float, threshold: int, open_ms: float) -> Breaker:
    """The state after a call that passed ended with ``outcome``."""
    if outcome is Outcome.NEUTRAL:
        return replace(b, trial=False) if b.state is State.HALF_OPEN else b
    if outcome is Outcome.SUCCESS:
        return Breaker() if b.state is not State.OPEN else b
    if b.state is State.HALF_OPEN:
        return Breaker(State.OPEN, b.failures + 1, now + open_ms, False)
    if b.state is State.OPEN:
        return b
    failures = b.failures + 1
    if failures >= threshold:
        return Breaker(State.OPEN, failures, now + open_ms, False)
    return replace(b, failures=failures)


def counts_by_default(error: BaseException) -> bool:
    """Whether a failure counts toward opening a breaker: not a bad input (NonRetryable,
    invalid payload) and not another breaker's refusal."""
    return not isinstance(error, NonRetryable | CircuitOpen)


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """A breaker's settings; None takes CIRCUIT_BREAKER_THRESHOLD / _TIMEOUT."""

    threshold: int | None = None
    timeout: float | None = None  # seconds open before a trial
    counts: Callable[[BaseException], bool] = counts_by_default
