"""arqd and its peers side by side: same Redis, same machine, same workloads, interleaved.

    .venv/bin/python -m bench.peers install            # once: the peers' own environments
    .venv/bin/python -m bench.compare [--systems arqd,saq,...] [--tasks 20000] [--runs 3]
                                      [--quick] [--out bench/results/compare.md]

Starts a private redis-server (no persistence) on a free port. Each run goes round the
systems in turn (the order rotates from run to run); the report gives the median of the
runs for every figure, and the JSON beside it every run's figures. A system that cannot
be installed or run is reported as failed, with the reason; nothing is estimated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import redis.asyncio as aioredis
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from bench.compare_report import Comparison, environment, render
from bench.measure import Bench
from bench.model import Options
from bench.procs import private_redis
from bench.report import load_average
from bench.sidebyside import Limits, Processing, SideBySide, SystemRun, reason
from bench.systems.arqd import ArqdSystem
from bench.systems.catalog import ALL, BY_NAME

QUICK = Limits(tasks=2_000, seconds=3.0, max_seconds=5.0, drain=5.0)


async def arqd_alone(
    task: str, url: str, r: aioredis.Redis, limits: Limits, progress: Progress
) -> Processing:
    """arqd alone, tuned worker: ``bench.tasks.noop`` (tasks that do nothing at all), or
    ``incr_plain`` (the common INCR job through plain redis.asyncio, as the Python peers
    run it, instead of arqd's PipelinedRedis)."""
    concurrency = BY_NAME["arqd"].tuned.concurrency
    bench = Bench(lambda: ArqdSystem(url), url, r, Options(tasks=limits.tasks, runs=1), progress)
    result = await bench.processing(task, concurrency, runs=1)
    run = result.runs[0]
    return Processing(run.rate, limits.tasks, limits.tasks / run.rate, run.worker_cpu_us,
                      run.peak_rss, 1)  # fmt: skip


async def compare(
    names: Sequence[str], url: str, limits: Limits, runs: int, out: Path, progress: Progress
) -> Comparison:
    r = aioredis.Redis.from_url(url)
    try:
        info = await r.info("server")
        result = Comparison(environment(names, str(info["redis_version"])), limits, runs)
        overall = progress.add_task("runs", total=runs * len(names))
        for i in range(runs):
            for name in [*names[i % len(names) :], *names[: i % len(names)]]:
                progress.update(overall, description=f"run {i + 1} of {runs}: {name}")
                result.runs.append(await _one(name, url, r, limits, progress))
                progress.advance(overall)
                _save(result, out)  # a crash later keeps what was measured
        result.environment["load average at end"] = load_average()
        return result
    finally:
        await r.aclose()


async def _one(
    name: str, url: str, r: aioredis.Redis, limits: Limits, progress: Progress
) -> SystemRun:
    run = await SideBySide(BY_NAME[name], url, r, limits, progress).run()
    if name == "arqd":
        for task in ("noop", "incr_plain"):
            try:
                await r.flushall()
                setattr(run, task, await arqd_alone(task, url, r, limits, progress))
            except Exception as exc:
                run.errors[task] = reason(exc)
            finally:
                await r.flushall()
    return run


def _save(result: Comparison, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    data = {"environment": result.environment, "limits": asdict(result.limits),
            "runs": [asdict(run) for run in result.runs]}  # fmt: skip
    out.with_suffix(".json").write_text(json.dumps(data, indent=2, default=str) + "\n")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.splitlines()[0])
    p.add_argument("--systems", default=",".join(BY_NAME), help="comma-separated; default: all")
    p.add_argument("--tasks", type=int, help="tasks per enqueue and processing run (20000)")
    p.add_argument("--runs", type=int, help="interleaved runs, medians reported (3)")
    p.add_argument("--seconds", type=float, help="latency: seconds per rate (10)")
    p.add_argument("--rates", help="latency: steady rates, comma-separated (500,5000)")
    p.add_argument("--max-seconds", type=float, help="processing: longest run (10)")
    p.add_argument("--quick", action="store_true", help="2,000 tasks, 3 s per rate, one run")
    p.add_argument("--out", type=Path, default=Path("bench/results/compare.md"))
    return p.parse_args(argv)


def _limits(args: argparse.Namespace) -> tuple[Limits, int]:
    limits = QUICK if args.quick else Limits()
    if args.tasks:
        limits = replace(limits, tasks=args.tasks)
    if args.seconds:
        limits = replace(limits, seconds=args.seconds)
    if args.rates:
        limits = replace(limits, rates=tuple(int(x) for x in args.rates.split(",")))
    if args.max_seconds:
        limits = replace(limits, max_seconds=args.max_seconds)
    return limits, args.runs or (1 if args.quick else 3)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    names = [n.strip() for n in args.systems.split(",") if n.strip()]
    if unknown := [n for n in names if n not in BY_NAME]:
        sys.exit(f"unknown systems: {', '.join(unknown)}; known: {', '.join(p.name for p in ALL)}")
    limits, runs = _limits(args)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    started = time.monotonic()
    with private_redis() as url, Progress(*columns, console=Console(stderr=True)) as progress:
        result = asyncio.run(compare(names, url, limits, runs, args.out, progress))
    result.environment["wall time"] = f"{(time.monotonic() - started) / 60:.1f} min"
    _save(result, args.out)
    report = render(result)
    args.out.write_text(report + "\n")
    Console(soft_wrap=True).print(report, markup=False, highlight=False)


if __name__ == "__main__":
    main()
