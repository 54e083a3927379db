"""Rendering the metrics: Prometheus text, or the same samples as JSON."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from arqd.observability.metrics import Metrics

log = logging.getLogger("arqd.metrics")
TEXT_CONTENT_TYPE = CONTENT_TYPE_LATEST


async def refreshed(metrics: Metrics, refresh: Awaitable[None]) -> Metrics:
    """``metrics`` once ``refresh`` (say ``metrics.refresh(store)``) has read the cluster
    gauges; with Redis unreachable, keep the last ones and say so, so a scrape (and a
    liveness probe on it) still answers."""
    try:
        await refresh
    except (RedisError, OSError) as exc:
        log.warning("metrics: cluster gauges not refreshed, Redis unreachable: %s", exc)
    return metrics


def as_text(metrics: Metrics) -> bytes:
    return generate_latest(metrics.registry)


def as_json(metrics: Metrics) -> dict[str, Any]:
    """Every metric with its type, help and samples."""
    families = []
    for family in metrics.registry.collect():
        samples = [{"name": s.name, "labels": s.labels, "value": s.value} for s in family.samples]
        families.append(
            {
                "name": family.name,
                "type": family.type,
                "help": family.documentation,
                "samples": samples,
            }
        )
    return {"metrics": families}
