"""What the files under deploy/ must agree on: where they are, the metrics arqd exposes,
and small helpers to read them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from arqd.observability.metrics import STATUSES, ClusterCollector, ClusterSnapshot

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

COUNTERS = frozenset(
    {
        "arq_http_requests_total",
        "arq_tasks_processed_total",
        "arq_tasks_enqueued_total",
        "arq_task_retries_total",
        "arq_rate_limited_requests_total",
        "arq_tasks_held_total",
        "arq_circuit_breaker_transitions_total",
        "arq_auth_failures_total",
        "arq_tasks_expired_total",
    }
)
GAUGES = frozenset(
    {
        "arq_queue_length",
        "arq_active_consumers",
        "arq_circuit_breaker_state",
        "arq_uptime_seconds",
        "arq_dead_letter_size",
        "arq_queue_tasks",
        "arq_consumer_lag_seconds",
        "arq_queue_paused",
    }
)
HISTOGRAMS = frozenset(
    {
        "arq_http_request_duration_seconds",
        "arq_task_duration_seconds",
        "arq_task_wait_seconds",
        "arq_http_long_poll_duration_seconds",
    }
)
METRICS = COUNTERS | GAUGES | HISTOGRAMS

# The series a Prometheus server stores for those metrics: a histogram is three series.
SERIES = COUNTERS | GAUGES | {h + s for h in HISTOGRAMS for s in ("_bucket", "_sum", "_count")}

_METRIC_NAME = re.compile(r"\barq_[a-z0-9_]+\b")


def _cluster_wide() -> dict[str, frozenset[str]]:
    """The series read from Redis at scrape time (the collector's ``cluster_wide``), each
    with its labels: every scrape target reports the same value for them."""
    collector = ClusterCollector(started=0.0)
    queue = dict.fromkeys(STATUSES, 0.0)
    collector.snapshot = ClusterSnapshot(queues={"q": queue}, lag={"q": 0.0}, breakers={"b": {}})
    return {
        sample.name: frozenset(sample.labels)
        for family in collector.cluster_wide()
        for sample in family.samples
    }


CLUSTER_WIDE = _cluster_wide()

AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values"}
    | {"bottomk", "topk", "quantile", "limitk", "limit_ratio"}
)
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')
_CLAUSE_AFTER = re.compile(r"\s*(by|without)\s*\(([^)]*)\)")
_OPERATOR_BEFORE = re.compile(r"([a-z_]+)\s*(?:(by|without)\s*)?$")


@dataclass(frozen=True)
class Aggregation:
    """The aggregation around one reading of a series: ``max by (queue)`` is
    ``Aggregation("max", "by", frozenset({"queue"}))``; None around it is no aggregation."""

    operator: str
    clause: str  # "by", "without", or "" for none
    labels: frozenset[str]


def aggregations(expr: str, series: str) -> list[Aggregation | None]:
    """For each place ``expr`` reads ``series``, the innermost aggregation enclosing it."""
    text = _STRING.sub(lambda m: '"' + " " * (len(m.group()) - 2) + '"', expr)
    closing = _matching_parentheses(text)
    found: list[Aggregation | None] = []
    for match in re.finditer(rf"\b{re.escape(series)}\b", text):
        around = sorted((o for o, c in closing.items() if o < match.start() < c), reverse=True)
        found.append(next(filter(None, (_aggregation(text, o, closing) for o in around)), None))
    return found


def _matching_parentheses(text: str) -> dict[int, int]:
    opened: list[int] = []
    closing: dict[int, int] = {}
    for index, char in enumerate(text):
        if char == "(":
            opened.append(index)
        elif char == ")":
            closing[opened.pop()] = index
    assert not opened, f"unbalanced parentheses in {text!r}"
    return closing


def _aggregation(text: str, opening: int, closing: dict[int, int]) -> Aggregation | None:
    """The aggregation whose argument list opens at ``opening``, if it is one."""
    head = text[:opening].rstrip()
    clause, labels = "", ""
    if head.endswith(")"):  # ``max by (queue) (...)``: the clause comes first
        start = next(o for o, c in closing.items() if c == len(head) - 1)
        labels = text[start + 1 : len(head) - 1]
        head = text[:start]
    elif after := _CLAUSE_AFTER.match(text, closing[opening] + 1):  # ``max(...) by (queue)``
        clause, labels = after.group(1), after.group(2)
    before = _OPERATOR_BEFORE.search(head)
    if before is None or before.group(1) not in AGGREGATIONS:
        return None
    clause = before.group(2) or clause
    names = frozenset(label.strip() for label in labels.split(",") if label.strip())
    return Aggregation(before.group(1), clause, names)


def max_by_its_labels(aggregation: Aggregation | None, labels: frozenset[str]) -> bool:
    """Whether a cluster-wide series is read as it should be across scrape targets: the
    same value from every target, so ``max`` over the targets, keeping its own labels."""
    if aggregation is None or aggregation.operator != "max":
        return False
    if aggregation.clause == "without":
        return not aggregation.labels & labels
    return aggregation.labels == labels


def metric_names(expr: str) -> set[str]:
    """The arq_* series a PromQL expression reads."""
    return set(_METRIC_NAME.findall(expr))


def metric_of(series: str) -> str:
    """The metric a series belongs to (a histogram's _bucket/_sum/_count map to it)."""
    for suffix in ("_bucket", "_sum", "_count"):
        if series.endswith(suffix) and series.removesuffix(suffix) in HISTOGRAMS:
            return series.removesuffix(suffix)
    return series


def squash(text: str) -> str:
    """Whitespace-insensitive form of a query, for comparing PromQL as written elsewhere."""
    return " ".join(text.split())


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as stream:
        return yaml.safe_load(stream)


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc is not None]


def mapping(value: object, where: str) -> dict[str, Any]:
    """``value`` as a mapping, or a test failure that says where one was expected."""
    assert isinstance(value, Mapping), f"{where}: expected a mapping, got {value!r}"
    return dict(value)


def duration_seconds(text: str) -> float:
    """Seconds in a compose/Prometheus duration such as ``45s``, ``2m`` or ``1m30s``."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    assert "".join(n + u for n, u in parts) == text, f"not a duration: {text!r}"
    return sum(float(number) * units[unit] for number, unit in parts)
