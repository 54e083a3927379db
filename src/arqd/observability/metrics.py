"""Prometheus metrics in an explicit registry.

Process-local counters and histograms (HTTP requests, tasks processed, durations) sit
beside gauges read from Redis at scrape time (queue lengths, lag, dead letters, live
workers, breakers), so any one endpoint tells the truth for the whole cluster, however
many workers run. Call ``refresh(store)`` before rendering.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from arqd.store.limits import served_breakers
from arqd.store.store import Store

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LONG_POLL_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0)  # wait= is at most 60 s
TASK_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
STATUSES = ("queued", "scheduled", "active", "succeeded", "failed", "cancelled", "expired")
TRANSITIONS = ("open", "half_open", "closed")


@dataclass
class ClusterSnapshot:
    """What Redis said at the last refresh."""

    queues: dict[str, dict[str, float]] = field(default_factory=dict)
    lag: dict[str, float] = field(default_factory=dict)
    workers: int = 0
    breakers: dict[str, dict[bytes, bytes]] = field(default_factory=dict)


class ClusterCollector(Collector):
    """Gauges (and breaker transition counts) of the whole cluster, from a snapshot."""

    def __init__(self, started: float) -> None:
        self.snapshot = ClusterSnapshot()
        self.started = started

    def collect(self) -> Iterator[Metric]:
        yield from self.cluster_wide()
        yield GaugeMetricFamily(
            "arq_uptime_seconds",
            "Seconds since this process started",
            value=time.monotonic() - self.started,
        )

    def cluster_wide(self) -> Iterator[Metric]:
        """The metrics read from Redis: every scrape target reports the same values, so a
        query across targets aggregates them with ``max`` (a ``sum`` counts each N times)."""
        snap = self.snapshot
        length = GaugeMetricFamily(
            "arq_queue_length", "Queued tasks: ready, or held by a limit", labels=["queue"]
        )
        tasks = GaugeMetricFamily("arq_queue_tasks", "Tasks by status", labels=["queue", "status"])
        dead = GaugeMetricFamily("arq_dead_letter_size", "Failed tasks kept", labels=["queue"])
        lag = GaugeMetricFamily(
            "arq_consumer_lag_seconds", "Age of the oldest queued task", labels=["queue"]
        )
        paused = GaugeMetricFamily(
            "arq_queue_paused", "1 while the whole queue is paused, else 0", labels=["queue"]
        )
        for queue, counts in snap.queues.items():
            length.add_metric([queue], counts["queued"])
            paused.add_metric([queue], counts.get("paused", 0.0))
            dead.add_metric([queue], counts["failed"])
            lag.add_metric([queue], snap.lag.get(queue, 0.0))
            for status in STATUSES:
                tasks.add_metric([queue, status], counts[status])
        yield from (length, tasks, dead, lag, paused)
        yield GaugeMetricFamily("arq_active_consumers", "Live workers", value=snap.workers)
        yield from self._breakers()

    def _breakers(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "arq_circuit_breaker_state", "0 closed, 1 open, 2 half-open", labels=["name"]
        )
        moves = CounterMetricFamily(
            "arq_circuit_breaker_transitions", "Breaker transitions", labels=["name", "to"]
        )
        for name, fields in self.snapshot.breakers.items():
            state.add_metric([name], float(fields.get(b"state", 0)))
            for to in TRANSITIONS:
                moves.add_metric([name, to], float(fields.get(f"to_{to}".encode(), 0)))
        yield state
        yield moves


class Children:
    """A labelled metric's children, each looked up once: prometheus_client's ``labels()``
    takes a lock and builds a tuple on every call, about 1.5 µs, and a request or task
    that counts itself would pay that per metric (bench.bench_api, CPU per POST /tasks).
    Label sets beyond ``keep`` are not remembered (their ``labels()`` is called each time),
    so the cache stays bounded whatever the labels."""

    def __init__(self, metric: Any, keep: int = 10_000) -> None:
        self.metric = metric
        self.keep = keep
        self._children: dict[tuple[str, ...], Any] = {}

    def __len__(self) -> int:
        """How many label sets are remembered."""
        return len(self._children)

    def __call__(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self.metric.labels(*values)
            if len(self._children) < self.keep:
                self._children[values] = child
        return child


class Metrics:
    """Every metric arqd exposes, registered in one registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._http(r)
        self._tasks(r)
        self.tasks_enqueued = Counter(
            "arq_tasks_enqueued", "Tasks enqueued", ["queue", "type"], registry=r
        )
        self.tasks_enqueued_of = Children(self.tasks_enqueued)
        self.task_retries = Counter("arq_task_retries", "Retries scheduled", ["type"], registry=r)
        self.task_wait = Histogram(
            "arq_task_wait_seconds",
            "Time ready before an attempt started",
            ["queue"],
            buckets=TASK_BUCKETS,
            registry=r,
        )
        self.rate_limited = Counter(
            "arq_rate_limited_requests",
            "Requests refused, or tasks put off to a reserved slot, by a rate limit",
            ["scope"],
            registry=r,
        )
        for scope in ("http", "auth", "task"):  # at 0 from the start: increase() sees the first
            self.rate_limited.labels(scope)
        self.tasks_expired = Counter(
            "arq_tasks_expired", "Tasks ended unstarted: past their deadline", ["queue"], registry=r
        )
        self.tasks_held = Counter(
            "arq_tasks_held",
            "Tasks held queued by a concurrency limit, an open breaker or a paused type",
            ["queue", "reason"],
            registry=r,
        )
        self.cluster = ClusterCollector(time.monotonic())
        r.register(self.cluster)

    def _http(self, r: CollectorRegistry) -> None:
        self.http_requests = Counter(
            "arq_http_requests", "HTTP requests", ["method", "path", "status"], registry=r
        )
        self.http_duration = Histogram(
            "arq_http_request_duration_seconds",
            "HTTP request duration",
            ["method", "path"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.http_long_poll_duration = Histogram(
            "arq_http_long_poll_duration_seconds",
            "HTTP long poll duration (GET /tasks/{id}?wait= that waited), apart from answers",
            ["method", "path"],
            buckets=LONG_POLL_BUCKETS,
            registry=r,
        )
        self.auth_failures = Counter(
            "arq_auth_failures", "Requests refused 401: no API key, or a wrong one", registry=r
        )
        # The children the API counts every request with (see ``Children``).
        self.http_requests_of = Children(self.http_requests)
        self.http_duration_of = Children(self.http_duration)
        self.http_long_poll_of = Children(self.http_long_poll_duration)

    def _tasks(self, r: CollectorRegistry) -> None:
        self.tasks_processed = Counter(
            "arq_tasks_processed", "Attempts ended, by outcome", ["type", "status"], registry=r
        )
        self.task_duration = Histogram(
            "arq_task_duration_seconds",
            "Duration of one attempt",
            ["type"],
            buckets=TASK_BUCKETS,
            registry=r,
        )

    async def refresh(self, store: Store) -> None:
        """Read the cluster gauges from Redis. Breakers: every one that has a record, and
        the breaker of each task type a live worker serves, on each queue it serves it
        (closed until it first fails), so alerts and dashboards see them from the start."""
        snap = ClusterSnapshot()
        queues = await store.tasks.queues()
        for queue in queues:
            stats = await store.tasks.stats(queue)
            snap.queues[queue] = {s: float(getattr(stats, s)) for s in (*STATUSES, "paused")}
            snap.lag[queue] = stats.oldest_age or 0.0
        live = await store.workers.live()
        snap.workers = len(live)
        served = served_breakers(live)
        found = await store.limits.all_breakers(sorted({*queues, *served}), served)
        snap.breakers = dict(found)
        self.cluster.snapshot = snap
