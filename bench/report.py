"""Markdown reports: the machine the figures were measured on, tables, the core report."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import psutil
import redis

from bench.measure import WARMUP
from bench.model import ProcessingResult, Results
from bench.procs import REPO


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)"


def cpu_model() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return cpu


def git_commit() -> str:
    git = ["git", "rev-parse", "--short", "HEAD"]
    commit = subprocess.run(git, cwd=REPO, capture_output=True, text=True).stdout.strip()
    return commit or "unknown"


def machine_info(redis_version: str) -> dict[str, str]:
    """What the numbers were measured on."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "arqd commit": git_commit(),
        "CPU": f"{cpu_model()}, {psutil.cpu_count(logical=False)} cores, {os.cpu_count()} threads",
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "OS": platform.platform(),
        "Python": f"{platform.python_implementation()} {platform.python_version()}, "
        f"redis-py {redis.__version__}",
        "Redis": f"redis-server {redis_version}, no persistence, on the same machine",
        "load average at start": load_average(),
    }


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


Check = tuple[str, float, str, float | None, float]  # metric, value, unit, floor, target


def checks(r: Results) -> list[Check]:
    """Each figure against this issue's floor and the peer comparison's target."""

    def best(workload: str, quiet: bool = True) -> float:
        rates = [p.rate for p in r.processing if (p.workload, p.quiet) == (workload, quiet)]
        return max(rates, default=0.0)

    rows: list[Check] = [
        ("no-op tasks processed, one worker", best("noop"), "tasks/s", 5_000, 25_000),
        ("INCR tasks processed, one worker", best("incr"), "tasks/s", None, 10_000),
    ]
    if any(p.workload == "incr_plain" for p in r.processing):
        metric = "INCR tasks, the job on plain redis.asyncio"
        rows.append((metric, best("incr_plain"), "tasks/s", None, 10_000))
    if any(not p.quiet for p in r.processing):
        metric = "no-op tasks processed, default logging"
        rows.append((metric, best("noop", quiet=False), "tasks/s", 5_000, 25_000))
    if r.enqueue:
        rows.append(("enqueue one at a time", r.enqueue[0].rate, "tasks/s", None, 10_000))
        rows.append(("enqueue in batches", r.enqueue[-1].rate, "tasks/s", None, 100_000))
    for x in r.latency:
        if x.label.startswith(r.system) and x.rate in (500, 5_000):
            floor, target = (5.0, 1.0) if x.rate == 500 else (None, 10.0)
            rows.append((f"p99 enqueue-to-start at {x.rate:,}/s", x.p99, "ms", floor, target))
    if r.memory:
        rows.append(("Redis per queued task", r.memory.bytes_per_task, "B", 1024, 200))
    if r.processing:
        rss = max(p.peak_rss for p in r.processing) / 2**20
        rows.append(("worker peak RSS", rss, "MB", None, 60))
    return rows


def _verdict(value: float, unit: str, limit: float | None) -> str:
    if limit is None:
        return "-"
    at_most = unit in ("ms", "B", "MB")
    ok = value <= limit if at_most else value >= limit
    return f"{'≤' if at_most else '≥'} {limit:,g} {'✅' if ok else '❌'}"


def render(r: Results) -> str:
    """The results as a markdown document."""
    o = r.options
    params = (
        f"{o.tasks:,} tasks per enqueue and processing run; processing: median of {o.runs} "
        f"runs; latency: {o.seconds:g} s per rate after {WARMUP:g} s of warm-up"
    )
    lines = [f"# {r.system} core engine benchmark", ""]
    lines += table(["", ""], [*r.machine.items(), ("parameters", params)])
    lines += ["## Against the targets", ""]
    lines += table(
        ["metric", "measured", "floor (this issue)", "target (peer comparison)"],
        [
            (m, f"{v:,.{1 if u in ('ms', 'MB') else 0}f} {u}", _verdict(v, u, f), _verdict(v, u, t))
            for m, v, u, f, t in checks(r)
        ],
    )
    lines += ["## Enqueue (no-op tasks, payload `{}`, async Client)", ""]
    lines += table(
        ["mode", "tasks", "seconds", "tasks/s", "client CPU µs/task", "Redis CPU µs/task"],
        [
            (e.mode, f"{e.tasks:,}", f"{e.seconds:.2f}", f"{e.rate:,.0f}",
             f"{e.client_cpu_us:.1f}", f"{e.redis_cpu_us:.1f}")
            for e in r.enqueue
        ],
    )  # fmt: skip
    lines += _processing(r.processing)
    lines += ["## Enqueue-to-start latency (worker idle before, steady producer)", ""]
    lines += table(
        ["what", "rate", "achieved", "samples", "p50 ms", "p95 ms", "p99 ms", "max ms"],
        [
            (x.label, f"{x.rate:,}/s", f"{x.achieved:,.0f}/s", f"{x.tasks:,}", f"{x.p50:.2f}",
             f"{x.p95:.2f}", f"{x.p99:.2f}", f"{x.max:.2f}")
            for x in r.latency
        ],
    )  # fmt: skip
    if r.memory:
        m = r.memory
        lines += [f"## Redis memory ({m.tasks:,} queued no-op tasks, no worker)", ""]
        rows = [("used_memory growth per task", f"{m.bytes_per_task:,.0f}")]
        rows += [(k, f"{v:,.0f}") for k, v in m.breakdown.items()]
        lines += table(["measure", "bytes"], rows)
    return "\n".join(lines)


def _processing(results: Sequence[ProcessingResult]) -> list[str]:
    lines = ["## Processing (one worker process; all tasks queued before it starts)", ""]
    lines += table(
        ["workload", "concurrency", "log per task", "tasks/s (median)", "runs",
         "worker CPU µs/task", "Redis CPU µs/task", "worker peak RSS"],
        [
            (p.workload, p.concurrency, "off" if p.quiet else "on (default)", f"{p.rate:,.0f}",
             " / ".join(f"{run.rate:,.0f}" for run in p.runs), f"{p.median.worker_cpu_us:,.0f}",
             f"{p.median.redis_cpu_us:,.0f}", f"{p.peak_rss / 2**20:.1f} MB")
            for p in results
        ],
    )  # fmt: skip
    note = (
        "tasks/s = tasks / (last finish − first start), from the tasks' own timestamps; "
        "CPU per task is of the median run, the worker's start-up left out. "
        "The bench runs workers with ARQD_LOG_LEVEL=WARNING but for the row marked default."
    )
    return [*lines, note, ""]
