"""Retry delays: exponential backoff with full jitter and a cap, pure and testable."""

from __future__ import annotations

import random
from dataclasses import dataclass

_RNG = random.Random()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a task type is retried.

    ``max_retries`` counts retries after the first attempt, so a task runs at most
    ``max_retries + 1`` times. The delay before retry ``n`` (1-based) is
    ``min(max_delay, base_delay * 2 ** (n - 1))``; with ``jitter`` a uniformly random
    fraction of it ("full jitter"), which spreads a burst of failures out in time.
    """

    max_retries: int = 3
    base_delay: float = 1.0
    max_delay: float = 300.0
    jitter: bool = True

    def delay(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the first retry)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(60, max(0, retry_number - 1)))
        if not self.jitter:
            return ceiling
        return (rng or _RNG).uniform(0.0, ceiling)

    def allows(self, attempts: int) -> bool:
        """Whether a task that has run ``attempts`` times may run again."""
        return attempts <= self.max_retries


class Reconnect:
    """Delays between attempts to reach Redis again: exponential with full jitter, at
    least ``floor`` and at most ``cap`` seconds; ``reset`` once a call gets through."""

    def __init__(self, base: float = 0.1, cap: float = 10.0, floor: float = 0.05) -> None:
        self.policy = RetryPolicy(base_delay=base, max_delay=cap)
        self.floor = floor
        self.failures = 0

    def next(self) -> float:
        """Seconds to wait after one more failure."""
        self.failures += 1
        return max(self.floor, self.policy.delay(self.failures))

    def reset(self) -> None:
        self.failures = 0
