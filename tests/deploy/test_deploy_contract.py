"""The check that cluster-wide series are read with max: it sees what it must see."""

from __future__ import annotations

import pytest
from deploy_contract import CLUSTER_WIDE, aggregations, max_by_its_labels


def test_the_cluster_wide_series_come_from_the_collector() -> None:
    assert {"arq_queue_length", "arq_active_consumers"} <= set(CLUSTER_WIDE)
    assert CLUSTER_WIDE["arq_circuit_breaker_transitions_total"] == {"name", "to"}
    assert "arq_uptime_seconds" not in CLUSTER_WIDE  # each process has its own


@pytest.mark.parametrize(
    ("expr", "right"),
    [
        ("max by (queue) (arq_queue_length)", True),
        ("max(arq_queue_length) by (queue)", True),
        ("max without (instance, job) (arq_queue_length) > 500", True),
        ('sum by (queue) (max by (queue, status) (arq_queue_tasks{status=~"(a|b)"}))', True),
        ("arq_queue_length", False),
        ("sum by (queue) (arq_queue_length) > 1000", False),
        ("max (arq_queue_length)", False),  # loses the queue label
        ("max by (queue) (arq_queue_length) and on () sum(arq_active_consumers) == 0", False),
        ("sum(increase(arq_circuit_breaker_transitions_total[5m]))", False),
    ],
)
def test_max_by_its_labels(expr: str, right: bool) -> None:
    found = [
        max_by_its_labels(a, labels)
        for series, labels in CLUSTER_WIDE.items()
        for a in aggregations(expr, series)
    ]
    assert found
    assert all(found) is right
