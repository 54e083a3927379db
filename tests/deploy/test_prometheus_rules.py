"""The Prometheus config and alert rules: checked and unit-tested by promtool, and held to
the spec's list of alerts and to the metrics arqd exposes."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from deploy_contract import (
    CLUSTER_WIDE,
    DEPLOY,
    SERIES,
    aggregations,
    load_yaml,
    mapping,
    max_by_its_labels,
    metric_names,
    squash,
)

from arqd.observability.metrics import Metrics
from tools import PROMTOOL, require

PROMETHEUS = DEPLOY / "prometheus"

# The spec's alerts (arq-m5-report.md, "Alert Rules"): name, severity, and what the
# expression must contain (compared with whitespace squashed).
SPEC_ALERTS: dict[str, tuple[str, list[str]]] = {
    "ArqHighErrorRate": (
        "critical",
        [
            'rate(arq_tasks_processed_total{status="failed"}[5m])',
            "/ sum(rate(arq_tasks_processed_total[5m]))",
            "> 0.05",
        ],
    ),
    "ArqCircuitBreakerOpen": ("critical", ["arq_circuit_breaker_state) == 1"]),
    "ArqQueueLengthCritical": ("critical", ["arq_queue_length) > 1000"]),
    "ArqHttpLatencyP95High": (
        "critical",
        ["histogram_quantile(0.95,", "arq_http_request_duration_seconds_bucket[5m]", "> 0.1"],
    ),
    "ArqQueueLengthWarning": ("warning", ["arq_queue_length) > 500"]),
    "ArqRateLimited": ("warning", ["increase(arq_rate_limited_requests_total[5m])", "> 0"]),
    "ArqConsumerLag": ("warning", ["arq_consumer_lag_seconds) > 10"]),
}


@pytest.fixture(scope="module")
def promtool() -> str:
    return require(PROMTOOL)


def run_promtool(promtool: str, *args: str) -> None:
    done = subprocess.run(
        [promtool, *args], cwd=DEPLOY.parent, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, (
        f"promtool {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
    )


def rules() -> dict[str, dict[str, Any]]:
    """Every alerting rule in alerts.yml, by alert name."""
    found: dict[str, dict[str, Any]] = {}
    for group in mapping(load_yaml(PROMETHEUS / "alerts.yml"), "alerts.yml")["groups"]:
        for rule in group["rules"]:
            assert rule["alert"] not in found, f"alert {rule['alert']} is defined twice"
            found[rule["alert"]] = mapping(rule, rule["alert"])
    return found


def test_config_is_valid(promtool: str) -> None:
    run_promtool(promtool, "check", "config", "deploy/prometheus/prometheus.yml")


def test_rules_are_valid(promtool: str) -> None:
    run_promtool(promtool, "check", "rules", "deploy/prometheus/alerts.yml")


def test_rule_unit_tests_pass(promtool: str) -> None:
    run_promtool(promtool, "test", "rules", "deploy/prometheus/alerts_test.yml")


@pytest.mark.parametrize("name", sorted(SPEC_ALERTS))
def test_spec_alert_is_defined(name: str) -> None:
    severity, fragments = SPEC_ALERTS[name]
    rule = rules().get(name)
    assert rule is not None, f"alerts.yml has no alert {name}"
    assert rule["labels"]["severity"] == severity
    expr = squash(rule["expr"])
    for fragment in fragments:
        assert fragment in expr, f"{name}: expected {fragment!r} in {expr!r}"


def test_the_p95_alert_measures_answers_not_long_polls() -> None:
    """Long polls are timed in a histogram of their own (api/http_metrics.py), which the
    p95 alert does not read; alerts_test.yml shows it quiet when only they take long."""
    exposed = {family.name for family in Metrics().registry.collect()}
    assert {"arq_http_request_duration_seconds", "arq_http_long_poll_duration_seconds"} <= exposed
    expr = squash(rules()["ArqHttpLatencyP95High"]["expr"])
    assert "arq_http_long_poll_duration_seconds" not in expr


def test_every_alert_is_documented_and_bounded() -> None:
    for name, rule in rules().items():
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert "for" in rule, f"{name} has no `for:` duration"
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), name


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    cases = mapping(load_yaml(PROMETHEUS / "alerts_test.yml"), "alerts_test.yml")
    assert cases["rule_files"] == ["alerts.yml"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for group in cases["tests"]:
        for case in group.get("alert_rule_test", []):
            (firing if case["exp_alerts"] else quiet).add(case["alertname"])
    defined = set(rules())
    assert defined - firing == set(), "alerts never shown to fire"
    assert defined - quiet == set(), "alerts never shown to stay quiet"


def test_rules_read_only_metrics_arqd_exposes() -> None:
    for name, rule in rules().items():
        unknown = metric_names(rule["expr"]) - SERIES
        assert not unknown, f"{name} reads metrics arqd does not expose: {sorted(unknown)}"


def test_rules_take_cluster_wide_series_with_max_by_their_labels() -> None:
    """Every target reports the same value of a series read from Redis: a sum would fire
    at a fraction of the threshold, and a bare series once per target."""
    for name, rule in rules().items():
        for series, labels in CLUSTER_WIDE.items():
            for found in aggregations(rule["expr"], series):
                assert max_by_its_labels(found, labels), (
                    f"{name} reads {series} with {found}, not max by ({', '.join(sorted(labels))})"
                )


def test_scrapes_the_api_and_every_worker() -> None:
    config = mapping(load_yaml(PROMETHEUS / "prometheus.yml"), "prometheus.yml")
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for job_name, host, port in (("arqd-api", "api", 3000), ("arqd-worker", "worker", 9090)):
        job = jobs[job_name]
        assert job.get("metrics_path", "/metrics") == "/metrics"
        (discovery,) = job["dns_sd_configs"]
        assert discovery["names"] == [host]
        assert (discovery["type"], discovery["port"]) == ("A", port)
