"""Rate limits: the declaration, and the GCRA arithmetic the Redis scripts implement.

GCRA (the generic cell rate algorithm) keeps one number per limit, the theoretical
arrival time (TAT) of the next request. A limit of ``count`` per ``period`` emits one
token every ``interval = period / count``; ``burst`` tokens may be taken back to back.
This module is the reference that ``gcra_take`` in ``store/lua/common.lua`` is tested
against (tests/integration/test_lua_models.py).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from arqd.core.errors import ConfigurationError

PERIODS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*$")


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``count`` per ``period`` seconds, with bursts of up to ``burst``."""

    count: int
    period: float
    burst: int = 1

    @classmethod
    def parse(cls, text: str, burst: int | None = None) -> Rate:
        """``"10/s"``, ``"100/m"``, ``"5/10s"``, ``"1000/hour"``; burst defaults to 1."""
        match = _RATE.match(text.lower())
        if not match or match.group(3) not in PERIODS or int(match.group(1)) <= 0:
            raise ConfigurationError(
                f"invalid rate {text!r}: write COUNT/PERIOD, e.g. '10/s', '100/m', '5/10s'"
            )
        period = PERIODS[match.group(3)] * int(match.group(2) or 1)
        chosen = 1 if burst is None else burst
        if chosen < 1:
            raise ConfigurationError(f"burst must be at least 1, got {chosen}")
        return cls(int(match.group(1)), period, chosen)

    @property
    def interval_ms(self) -> float:
        """Milliseconds between two tokens."""
        return self.period * 1000 / self.count


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of asking for one token."""

    allowed: bool
    tat: float  # the TAT to store (unchanged when refused)
    retry_after_ms: float  # 0 when allowed
    remaining: int  # tokens still available right now
    reset_ms: float  # how long until the limit is back to a full burst


def gcra(tat: float | None, now: float, interval: float, burst: int) -> Decision:
    """Take one token at ``now`` (ms) given the stored ``tat`` (None: never used).

    The arithmetic is on how far the TAT is ahead of ``now``, not on the epoch-sized times
    themselves: ``(now + interval) - now`` need not be ``interval`` in floating point, which
    would refuse the first token of a burst of 1 for some intervals that are not whole."""
    ahead = 0.0 if tat is None else max(tat - now, 0.0)
    new_ahead = ahead + interval
    allow_until = interval * burst
    if new_ahead > allow_until:
        return Decision(False, now if tat is None else tat, new_ahead - allow_until, 0, ahead)
    remaining = math.floor((allow_until - new_ahead) / interval)
    return Decision(True, now + new_ahead, 0.0, remaining, new_ahead)


def reserve(tat: float | None, now: float, interval: float, burst: int) -> tuple[float, float]:
    """Take the next token at ``now`` even when it is not due yet: a worker defers a task
    to its token's time instead of refusing it. Returns (the TAT to store, ms to wait)."""
    decision = gcra(tat, now, interval, burst)
    ahead = decision.reset_ms + (0 if decision.allowed else interval)  # new TAT - now
    return now + ahead, decision.retry_after_ms
