"""The side-by-side report: where it was measured, the medians per system, the failures."""

from __future__ import annotations

import json
import math
import platform
import shutil
import statistics
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata

import psutil

from bench.peers.install import NODE_DIR, installed, venv
from bench.report import cpu_model, git_commit, load_average, table
from bench.sidebyside import Limits, SystemRun
from bench.systems.catalog import ALL, BY_NAME
from bench.systems.spec import Peer

Figure = Callable[[SystemRun], float | None]


@dataclass
class Comparison:
    environment: dict[str, str]
    limits: Limits
    runs_per_system: int
    runs: list[SystemRun] = field(default_factory=list)


def version(peer: Peer) -> str:
    """The installed version of the system's package, or why there is none."""
    if not installed(peer):
        return "not installed"
    if peer.kind == "arqd":
        return f"{metadata.version('arqd')} ({git_commit()})"
    if peer.kind == "node":
        package = NODE_DIR / "node_modules" / peer.distribution / "package.json"
        return str(json.loads(package.read_text())["version"])
    code = f"import importlib.metadata as m; print(m.version({peer.distribution!r}))"
    done = subprocess.run([str(venv(peer) / "python"), "-c", code], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def _node() -> str:
    node = shutil.which("node")
    if not node:
        return "not installed"
    return subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()


def environment(names: Sequence[str], redis_version: str) -> dict[str, str]:
    """The machine, the tools and each system's version."""
    info = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "arqd commit": git_commit(),
        "CPU": cpu_model(),
        "cores": f"{psutil.cpu_count(logical=False)} cores, {psutil.cpu_count()} threads",
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "OS": platform.platform(),
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "Node": _node(),
        "Redis": f"redis-server {redis_version}, no persistence, same machine, private port",
        "load average at start": load_average(),
    }
    info |= {f"{BY_NAME[n].title} version": version(BY_NAME[n]) for n in names}
    return info


# Figures: one number per system and run, or None.


def _rss(run: SystemRun) -> float | None:
    peaks = [p.peak_rss for p in (run.default, run.tuned) if p] + [run.latency_rss or 0]
    return max(peaks) / 2**20 if any(peaks) else None


def _latency(rate: int, name: str) -> Figure:
    def figure(run: SystemRun) -> float | None:
        found = [x for x in run.latency if x.rate == rate]
        return float(getattr(found[0], name)) if found else None

    return figure


def _median(result: Comparison, system: str, figure: Figure) -> float | None:
    values = [v for run in result.runs if run.system == system if (v := figure(run)) is not None]
    return statistics.median(values) if values else None


def _failure(result: Comparison, system: str, workload: str) -> str:
    for run in result.runs:
        if run.system == system and (why := run.errors.get(workload) or run.errors.get("all")):
            return f"failed: {why}"
    return "-"


def _cell(
    result: Comparison,
    system: str,
    figure: Figure,
    workload: str,
    fmt: str = ",.0f",
    unit: str = "",
) -> str:
    value = _median(result, system, figure)
    if value is None:
        return _failure(result, system, workload)
    if math.isinf(value):
        return f"> {result.limits.drain:g} s (not started)"
    return format(value, fmt) + unit


# The document.


def render(result: Comparison) -> str:
    limits = result.limits
    present = {run.system for run in result.runs}
    systems = [peer.name for peer in ALL if peer.name in present]
    lines = ["# arqd and its peers, side by side", ""]
    lines += table(["", ""], [*result.environment.items(), ("parameters", _parameters(result))])
    lines += ["## Throughput, memory (medians)", ""]
    lines += table(
        ["system", "enqueue one at a time, tasks/s", "enqueue in batches, tasks/s",
         "process, default worker, tasks/s", "process, tuned worker, tasks/s",
         "Redis bytes per queued task", "worker peak RSS, MB"],
        [
            (BY_NAME[s].title,
             _cell(result, s, lambda r: r.enqueue_one, "enqueue_one"),
             _cell(result, s, lambda r: r.enqueue_batch, "enqueue_batch")
             if BY_NAME[s].batch else "no batch API",
             _cell(result, s, lambda r: r.default.rate if r.default else None, "default"),
             _cell(result, s, lambda r: r.tuned.rate if r.tuned else None, "tuned"),
             _cell(result, s, lambda r: r.bytes_per_task, "enqueue_one"),
             _cell(result, s, _rss, "tuned", ".1f"))
            for s in systems
        ],
    )  # fmt: skip
    if "arqd" in systems:
        noop = _cell(result, "arqd", lambda r: r.noop.rate if r.noop else None, "noop")
        plain = _cell(
            result, "arqd", lambda r: r.incr_plain.rate if r.incr_plain else None, "incr_plain"
        )
        lines += [
            f"arqd, true no-op tasks (nothing but the queue), tuned worker: {noop} tasks/s.",
            "",
            "arqd's INCR job uses `PipelinedRedis`, the auto-pipelining client arqd offers "
            "handlers (BullMQ's jobs get the same from ioredis). The same job through a plain "
            f"redis.asyncio pool, as the Python peers run it, tuned worker: {plain} tasks/s.",
            "",
        ]
    lines += ["## Enqueue-to-start latency, tuned worker (medians; ms)", ""]
    lines += table(
        ["system", "rate", "achieved", "p50", "p95", "p99", "max"],
        [
            (BY_NAME[s].title, f"{rate:,}/s",
             _cell(result, s, _latency(rate, "achieved"), "latency", ",.0f", "/s"),
             *(_cell(result, s, _latency(rate, p), "latency", ".1f")
               for p in ("p50", "p95", "p99", "max")))
            for s in systems for rate in limits.rates
        ],
    )  # fmt: skip
    lines += ["## Worker settings", ""]
    lines += table(
        ["system", "default", "tuned", "batch enqueue", "worker CPU µs/task (tuned)",
         "load average (1 min) as each run began"],
        [
            (BY_NAME[s].title, BY_NAME[s].default.label, BY_NAME[s].tuned.label,
             BY_NAME[s].batch or "-",
             _cell(result, s, lambda r: r.tuned.cpu_us if r.tuned else None, "tuned"),
             " / ".join(f"{r.load:.1f}" for r in result.runs if r.system == s))
            for s in systems
        ],
    )  # fmt: skip
    return "\n".join([*lines, *_notes(result)])


def _parameters(result: Comparison) -> str:
    x = result.limits
    rates = " and ".join(f"{r:,}/s" for r in x.rates)
    return (
        f"{x.tasks:,} tasks per enqueue and processing run (a processing run stops after "
        f"{x.max_seconds:g} s); latency {x.seconds:g} s at {rates}, late tasks awaited "
        f"{x.drain:g} s; {result.runs_per_system} interleaved run(s) per system"
    )


def _notes(result: Comparison) -> list[str]:
    notes = [
        "Every job is one Redis INCR on a counter key (latency jobs: one RPUSH of their "
        "enqueue-to-start time, taken from the payload); completion is read from that counter. "
        "Processing rates leave each worker's start-up out (from the first finished job). "
        "Memory: `used_memory` growth over the queued tasks of the one-at-a-time enqueue, "
        "no worker running. Peak RSS: VmHWM of the largest process in the worker's tree.",
        "",
    ]
    failures = sorted(
        {(run.system, step, why) for run in result.runs for step, why in run.errors.items()}
    )
    if failures:
        notes += ["## Failures", ""]
        notes += table(["system", "workload", "reason"], failures)
    return notes
