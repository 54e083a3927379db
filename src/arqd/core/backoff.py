"""Retry delays: exponential backoff with full jitter and a cap, pure and testable."""

from __future__ import annotations

import logging
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


class Outage:
    """What a loop that talks to Redis says of an outage: its first failure as a warning,
    the failures after it only at debug level, and, once a call gets through again, one
    line saying so. A worker that loses Redis for a minute writes two lines, not one a
    retry (``Reconnect`` spaces the retries)."""

    def __init__(self, log: logging.Logger, doing: str) -> None:
        self.log = log
        self.doing = doing
        self.failures = 0

    def failed(self, exc: BaseException, delay: float | None = None) -> None:
        self.failures += 1
        retry = "" if delay is None else f"; retrying in {delay:.1f} s"
        if self.failures == 1:
            self.log.warning(
                "%s failed: %s%s (said once until it works again)", self.doing, exc, retry
            )
        else:
            self.log.debug("%s failed again (%d): %s%s", self.doing, self.failures, exc, retry)

    def worked(self) -> None:
        if self.failures:
            self.log.info("%s works again after %d failed tries", self.doing, self.failures)
            self.failures = 0
