"""The Grafana dashboard and its provisioning: valid JSON, the spec's queries, a panel for
every metric arqd exposes, nothing it does not expose, and cluster-wide series taken with max."""

from __future__ import annotations

import json
from typing import Any

import pytest
from deploy_contract import (
    CLUSTER_WIDE,
    DEPLOY,
    METRICS,
    SERIES,
    aggregations,
    load_yaml,
    mapping,
    max_by_its_labels,
    metric_names,
    metric_of,
    squash,
)

GRAFANA = DEPLOY / "grafana"

# The spec's "Prometheus Queries" (arq-m5-report.md), whitespace aside. A query over a
# cluster-wide series is charted inside ``max by (its labels)``: every target reports it.
SPEC_QUERIES = [
    "rate(arq_http_requests_total[1m])",
    "rate(arq_tasks_processed_total[1m])",
    "rate(arq_http_request_duration_seconds_sum[1m]) / "
    "rate(arq_http_request_duration_seconds_count[1m])",
    "arq_queue_length",
    "arq_circuit_breaker_state",
]


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    text = (GRAFANA / "dashboards" / "arqd.json").read_text(encoding="utf-8")
    return mapping(json.loads(text), "arqd.json")


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def queries(dashboard: dict[str, Any]) -> list[str]:
    return [squash(t["expr"]) for p in panels(dashboard) for t in p["targets"]]


def test_dashboard_identity(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "arqd"
    assert dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)


def as_charted(query: str) -> str:
    """The spec's query as the dashboard must chart it."""
    if query not in CLUSTER_WIDE:
        return squash(query)
    return f"max by ({', '.join(sorted(CLUSTER_WIDE[query]))}) ({query})"


@pytest.mark.parametrize("query", SPEC_QUERIES)
def test_spec_query_is_charted(dashboard: dict[str, Any], query: str) -> None:
    assert as_charted(query) in queries(dashboard)


def test_cluster_wide_series_are_taken_with_max_by_their_labels(
    dashboard: dict[str, Any],
) -> None:
    """Every target reports the same value of a series read from Redis: summed, a panel
    would show it once per API and worker process; bare, once per target."""
    wrong = [
        f"{panel['title']}: {target['expr']!r} reads {series} without max by "
        f"({', '.join(sorted(labels))})"
        for panel in panels(dashboard)
        for target in panel["targets"]
        for series, labels in CLUSTER_WIDE.items()
        if not all(max_by_its_labels(a, labels) for a in aggregations(target["expr"], series))
    ]
    assert not wrong, "\n".join(wrong)


def test_every_metric_is_charted(dashboard: dict[str, Any]) -> None:
    charted = {metric_of(name) for query in queries(dashboard) for name in metric_names(query)}
    assert METRICS - charted == set(), "metrics with no panel"


def test_dashboard_reads_only_metrics_arqd_exposes(dashboard: dict[str, Any]) -> None:
    for query in queries(dashboard):
        unknown = metric_names(query) - SERIES
        assert not unknown, f"{query!r} reads metrics arqd does not expose: {sorted(unknown)}"


def test_panels_are_well_formed(dashboard: dict[str, Any]) -> None:
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in panels(dashboard):
        title = panel["title"]
        assert panel["datasource"]["type"] == "prometheus", title
        assert panel["targets"], f"{title} has no query"
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), f"{title}: refIds repeat"
        grid = panel["gridPos"]
        assert grid["x"] >= 0, title
        assert grid["x"] + grid["w"] <= 24, f"{title} overflows the grid"


def test_datasource_variable_defaults_to_the_provisioned_prometheus(
    dashboard: dict[str, Any],
) -> None:
    provisioned = mapping(
        load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml"), "datasources"
    )
    prometheus = next(d for d in provisioned["datasources"] if d["type"] == "prometheus")
    assert prometheus["url"] == "http://prometheus:9090"
    assert prometheus["isDefault"] is True
    (variable,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    assert variable["current"]["value"] == prometheus["uid"]
    for panel in panels(dashboard):
        assert panel["datasource"]["uid"] == "${" + variable["name"] + "}", panel["title"]


def test_dashboard_provider_reads_the_mounted_folder() -> None:
    compose = mapping(load_yaml(DEPLOY / "docker-compose.yml"), "docker-compose.yml")
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    provider_file = GRAFANA / "provisioning" / "dashboards" / "arqd.yml"
    (provider,) = mapping(load_yaml(provider_file), "dashboard providers")["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == mounts["./grafana/dashboards"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
