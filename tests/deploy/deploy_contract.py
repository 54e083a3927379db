"""What the files under deploy/ must agree on: where they are, the metrics arqd exposes,
and small helpers to read them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

COUNTERS = frozenset(
    {
        "arq_http_requests_total",
        "arq_tasks_processed_total",
        "arq_tasks_enqueued_total",
        "arq_task_retries_total",
        "arq_rate_limited_requests_total",
        "arq_circuit_breaker_transitions_total",
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
    }
)
HISTOGRAMS = frozenset(
    {
        "arq_http_request_duration_seconds",
        "arq_task_duration_seconds",
        "arq_task_wait_seconds",
    }
)
METRICS = COUNTERS | GAUGES | HISTOGRAMS

# The series a Prometheus server stores for those metrics: a histogram is three series.
SERIES = COUNTERS | GAUGES | {h + s for h in HISTOGRAMS for s in ("_bucket", "_sum", "_count")}

_METRIC_NAME = re.compile(r"\barq_[a-z0-9_]+\b")


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
