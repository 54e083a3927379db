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
