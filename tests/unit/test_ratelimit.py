"""GCRA arithmetic and rate parsing, with a fake clock (milliseconds)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arqd.core.errors import ConfigurationError
from arqd.resilience.ratelimit import Rate, gcra


@pytest.mark.parametrize(
    ("text", "count", "period"),
    [("10/s", 10, 1.0), ("100/m", 100, 60.0), ("5/10s", 5, 10.0), ("1000/hour", 1000, 3600.0)],
)
def test_rates_parse(text: str, count: int, period: float) -> None:
    rate = Rate.parse(text)
    assert (rate.count, rate.period, rate.burst) == (count, period, 1)


@pytest.mark.parametrize("text", ["10", "ten/s", "10/fortnight", "0/s", "-1/s"])
def test_bad_rates_say_how_to_write_one(text: str) -> None:
    with pytest.raises(ConfigurationError, match="COUNT/PERIOD"):
        Rate.parse(text)


def test_burst_must_be_positive() -> None:
    with pytest.raises(ConfigurationError, match="burst"):
        Rate.parse("1/s", burst=0)


def test_a_burst_then_one_token_per_interval() -> None:
    interval, burst, now = 100.0, 3, 10_000.0
    tat = None
    results = []
    for _ in range(4):
        decision = gcra(tat, now, interval, burst)
        results.append((decision.allowed, decision.remaining))
        tat = decision.tat if decision.allowed else tat
    assert results == [(True, 2), (True, 1), (True, 0), (False, 0)]
    refused = gcra(tat, now, interval, burst)
    assert refused.retry_after_ms == pytest.approx(100.0)
    assert gcra(tat, now + 100, interval, burst).allowed


@given(st.lists(st.floats(0, 500), min_size=1, max_size=200), st.integers(1, 5))
def test_never_more_than_burst_plus_elapsed_over_interval(gaps: list[float], burst: int) -> None:
    interval = 100.0
    now, tat, allowed = 0.0, None, 0
    for gap in gaps:
        now += gap
        decision = gcra(tat, now, interval, burst)
        if decision.allowed:
            allowed += 1
            tat = decision.tat
        assert allowed <= burst + now / interval + 1e-9
