"""The HTTP rate limit's policy and its answer's headers, without Redis."""

import pytest

from arqd.api.ratelimit import RateLimitPolicy, Verdict, http_subject
from arqd.core.settings import Settings


def test_each_key_gets_its_override_or_the_default() -> None:
    policy = RateLimitPolicy.from_settings(
        Settings(api_keys="a,b,c", requests_per_minute=60, rate_limit_overrides="a=600,b=0")
    )
    assert policy.by_key
    assert [policy.limit_for(k) for k in (b"a", b"b", b"c", None)] == [600, 0, 60, 60]


def test_the_limit_is_off_only_when_no_client_has_one() -> None:
    assert not RateLimitPolicy.from_settings(Settings(requests_per_minute=0)).active
    assert not RateLimitPolicy.from_settings(
        Settings(api_keys="a", requests_per_minute=0, rate_limit_overrides="a=0")
    ).active
    assert RateLimitPolicy.from_settings(
        Settings(api_keys="a", requests_per_minute=0, rate_limit_overrides="a=5")
    ).active
    open_api = RateLimitPolicy.from_settings(Settings())
    assert (open_api.active, open_api.by_key) == (True, False)


@pytest.mark.parametrize(
    ("retry_ms", "seconds"), [(0, 1), (1, 1), (999, 1), (1000, 1), (1001, 2), (2999, 3)]
)
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(
    retry_ms: int, seconds: int
) -> None:
    assert Verdict(False, 60, retry_ms, 0, 0).retry_after == seconds


def test_the_headers_say_limit_remaining_and_reset() -> None:
    assert Verdict(True, 60, 0, 41, 18_001).headers() == {
        "RateLimit-Limit": "60",
        "RateLimit-Remaining": "41",
        "RateLimit-Reset": "19",
    }


def test_a_key_is_known_to_redis_only_by_its_digest() -> None:
    subject = http_subject(b"secret-key", "10.0.0.1")
    assert subject.startswith("key:")
    assert "secret" not in subject
    assert len(subject) == 4 + 64
    assert http_subject(None, "10.0.0.1") == "addr:10.0.0.1"
    assert http_subject(None, None) == "addr:unknown"
