import random

import pytest

from arqd.core.backoff import RetryPolicy


def test_delays_grow_exponentially_up_to_the_cap_without_jitter() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0, jitter=False)
    assert [policy.delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_full_jitter_stays_between_zero_and_the_exponential_ceiling() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=60.0)
    rng = random.Random(7)
    for n in range(1, 12):
        ceiling = min(60.0, 0.5 * 2 ** (n - 1))
        samples = [policy.delay(n, rng) for _ in range(200)]
        assert all(0.0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling / 2  # really spread, not stuck at zero


def test_huge_retry_numbers_do_not_overflow() -> None:
    assert RetryPolicy(max_delay=300.0, jitter=False).delay(10_000) == 300.0


@pytest.mark.parametrize(("attempts", "allowed"), [(1, True), (3, True), (4, False)])
def test_max_retries_counts_retries_after_the_first_attempt(attempts: int, allowed: bool) -> None:
    assert RetryPolicy(max_retries=3).allows(attempts) is allowed
