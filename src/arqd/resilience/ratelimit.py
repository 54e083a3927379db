"""Rate limits: the declaration, and the GCRA arithmetic the Redis scripts implement.

GCRA (the generic cell rate algorithm) keeps one number per limit, the theoretical
arrival time (TAT) of the next request. A limit of ``count`` per ``period`` emits one
token every ``interval = period / count``; ``burst`` tokens may be taken back to back.
This module is the reference the Lua in ``store/lua/common.lua`` is tested against.
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


def gcra(tat: float | None, now: float, interval: float, burst: int) -> Decision:
    """Take one token at ``now`` (ms) given the stored ``tat`` (None: never used)."""
    base = now if tat is None else max(tat, now)
    new_tat = base + interval
    allow_until = interval * burst
    if new_tat - now > allow_until:
        retry = new_tat - now - allow_until
        remaining = 0
        return Decision(False, base if tat is not None else now, retry, remaining)
    remaining = math.floor((allow_until - (new_tat - now)) / interval)
    return Decision(True, new_tat, 0.0, remaining)
