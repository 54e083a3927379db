from pathlib import Path

import pytest

from arqd.core.errors import ConfigurationError
from arqd.core.settings import Settings


def test_defaults_match_the_spec() -> None:
    s = Settings.from_env({})
    assert s.redis_url is None
    assert (s.queue_max_retries, s.task_timeout) == (3, 30_000)
    assert (s.requests_per_minute, s.circuit_breaker_threshold) == (60, 5)
    assert (s.circuit_breaker_timeout, s.metrics_port) == (30_000, 9090)
    assert s.enable_prometheus is True
    assert s.trace_sample_rate == 1.0
    assert s.port == 3000
    assert s.data_dir == Path(".arqd")


def test_values_are_read_from_the_environment() -> None:
    s = Settings.from_env(
        {
            "REDIS_URL": "redis://h:1/2",
            "TASK_TIMEOUT": "5000",
            "ARQD_CONCURRENCY": "7",
            "ENABLE_PROMETHEUS": "false",
            "API_KEYS": "a, b,,c",
        }
    )
    assert s.redis_url == "redis://h:1/2"
    assert s.task_timeout == 5000
    assert s.concurrency == 7
    assert s.enable_prometheus is False
    assert s.api_key_list() == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TASK_TIMEOUT", "abc"),
        ("TASK_TIMEOUT", "0"),
        ("QUEUE_MAX_RETRIES", "-1"),
        ("TRACE_SAMPLE_RATE", "1.5"),
        ("ARQD_CONCURRENCY", "lots"),
        ("ARQD_QUEUE", "a{b}"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name) as info:
        Settings.from_env({name: value})
    assert repr(value) in str(info.value)


def test_unknown_arqd_variables_are_errors_so_typos_surface() -> None:
    with pytest.raises(ConfigurationError, match="ARQD_CONCURENCY"):
        Settings.from_env({"ARQD_CONCURENCY": "5"})


def test_unrelated_variables_are_ignored_and_empty_means_default() -> None:
    s = Settings.from_env({"HOME": "/root", "REDIS_URL": ""})
    assert s.redis_url is None


def test_rate_limit_overrides_are_per_api_key_and_zero_turns_a_limit_off() -> None:
    s = Settings.from_env(
        {
            "API_KEYS": "alpha,beta==,gamma",
            "REQUESTS_PER_MINUTE": "0",
            "ARQD_RATE_LIMIT_OVERRIDES": "alpha=600, beta===0,,",
        }
    )
    assert s.requests_per_minute == 0
    assert s.rate_limits() == {"alpha": 600, "beta==": 0}
    assert Settings.from_env({}).rate_limits() == {}


@pytest.mark.parametrize(
    "value",
    ["alpha", "alpha=", "=5", "alpha=-1", "alpha=1.5", "alpha=lots", "alpha=5,stranger=5"],
)
def test_bad_rate_limit_overrides_name_the_variable_but_never_a_key(value: str) -> None:
    with pytest.raises(ConfigurationError, match="ARQD_RATE_LIMIT_OVERRIDES") as info:
        Settings.from_env({"API_KEYS": "alpha", "ARQD_RATE_LIMIT_OVERRIDES": value})
    assert "alpha" not in str(info.value)
    assert "stranger" not in str(info.value)


def test_an_override_for_a_key_that_is_not_configured_is_an_error() -> None:
    with pytest.raises(ConfigurationError, match="not one of API_KEYS"):
        Settings.from_env({"ARQD_RATE_LIMIT_OVERRIDES": "alpha=5"})


@pytest.mark.parametrize(
    ("name", "value"), [("REQUESTS_PER_MINUTE", "-1"), ("ARQD_MAX_INFLIGHT", "-1")]
)
def test_limits_cannot_be_negative(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({name: value})
