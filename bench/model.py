"""The figures one benchmark of one system produces (``python -m bench.core``)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

Payload = dict[str, Any]


@dataclass(frozen=True)
class Options:
    tasks: int = 20_000
    rates: tuple[int, ...] = (500, 5_000)
    seconds: float = 10.0
    concurrency: tuple[int, ...] = (50, 200)
    runs: int = 3
    callers: int = 50
    batch: int = 1_000
    baseline_seconds: float = 5.0
    default_logging: bool = True  # one more no-op run with the worker's default logging


@dataclass(frozen=True)
class EnqueueResult:
    mode: str
    tasks: int
    seconds: float
    client_cpu_us: float = 0.0  # the producing process's CPU per task, microseconds
    redis_cpu_us: float = 0.0  # redis-server CPU per task, microseconds

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds


@dataclass(frozen=True)
class Run:
    """One processing run."""

    rate: float  # tasks/s
    worker_cpu_us: float  # worker CPU per task, microseconds
    redis_cpu_us: float  # redis-server CPU per task, microseconds
    peak_rss: int  # bytes


@dataclass(frozen=True)
class ProcessingResult:
    workload: str
    concurrency: int
    quiet: bool  # no log line per task
    tasks: int
    runs: list[Run]

    @property
    def median(self) -> Run:
        return sorted(self.runs, key=lambda run: run.rate)[len(self.runs) // 2]

    @property
    def rate(self) -> float:
        return statistics.median(run.rate for run in self.runs)

    @property
    def peak_rss(self) -> int:
        return max(run.peak_rss for run in self.runs)


@dataclass(frozen=True)
class LatencyResult:
    label: str
    rate: int
    achieved: float
    tasks: int
    p50: float  # milliseconds
    p95: float
    p99: float
    max: float


@dataclass(frozen=True)
class MemoryResult:
    tasks: int
    bytes_per_task: float
    breakdown: dict[str, float]


@dataclass
class Results:
    system: str
    options: Options
    machine: dict[str, str]
    enqueue: list[EnqueueResult] = field(default_factory=list)
    processing: list[ProcessingResult] = field(default_factory=list)
    latency: list[LatencyResult] = field(default_factory=list)
    memory: MemoryResult | None = None
