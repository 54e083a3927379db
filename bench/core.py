"""Benchmark of arqd's core engine: enqueue rates, processing rate, latency, memory, RSS.

    .venv/bin/python -m bench.core [--tasks 20000] [--rate 500] [--seconds 10]
                                   [--redis-url URL] [--out bench/results/core.md]

Without ``--redis-url`` the bench starts a private redis-server (no persistence) on a free
port. The workloads are in ``bench.measure``; arqd is driven in process through the
``System`` protocol (``bench.systems``). Peers are compared side by side by
``python -m bench.compare``, each from its own virtual environment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TypeVar

import redis.asyncio as aioredis
from rich.console import Console
from rich.progress import Progress

from bench.measure import Bench
from bench.model import Options, Results
from bench.procs import private_redis
from bench.report import load_average, machine_info, render
from bench.systems.arqd import ArqdSystem
from bench.systems.protocol import System

T = TypeVar("T")
SYSTEMS: dict[str, Callable[[str], System]] = {"arqd": ArqdSystem}


async def run_benchmark(
    system: str, redis_url: str, options: Options, progress: Progress
) -> Results:
    """Every measurement, memory first (while the Redis is emptiest)."""
    adapter = SYSTEMS[system]
    r = aioredis.Redis.from_url(redis_url)
    try:
        version = str((await r.info("server"))["redis_version"])
        bench = Bench(lambda: adapter(redis_url), redis_url, r, options, progress)
        results = Results(system, options, machine_info(version))
        results.memory = await bench.memory()
        results.enqueue = await bench.enqueue()
        for workload in ("noop", "incr"):
            for concurrency in options.concurrency:
                results.processing.append(await bench.processing(workload, concurrency))
        first = options.concurrency[0]
        # The INCR job through a plain redis.asyncio pool, as the Python peers run it.
        results.processing.append(await bench.processing("incr_plain", options.concurrency[-1]))
        if options.default_logging:
            results.processing.append(await bench.processing("noop", first, False, runs=1))
        results.latency = await bench.latency(options.concurrency[0])
        if options.baseline_seconds > 0:
            results.latency.append(await bench.baseline_latency())
        results.machine["load average at end"] = load_average()
        return results
    finally:
        await r.aclose()


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.core", description=__doc__.splitlines()[0])
    p.add_argument("--system", choices=sorted(SYSTEMS), default="arqd")
    p.add_argument("--tasks", type=int, default=20_000, help="tasks per enqueue/processing run")
    p.add_argument("--rate", type=int, default=500, help="latency: steady tasks/s")
    p.add_argument("--high-rate", type=int, default=5_000, help="latency: second rate (0: skip)")
    p.add_argument("--seconds", type=float, default=10.0, help="latency: seconds per rate")
    p.add_argument("--concurrency", type=_ints, default=(50, 200), help="worker slots: 50,200")
    p.add_argument("--runs", type=int, default=3, help="processing runs per figure (median)")
    p.add_argument("--baseline-seconds", type=float, default=5.0, help="0: no baseline")
    p.add_argument(
        "--default-logging",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one more no-op run with the worker's default logging",
    )
    p.add_argument("--redis-url", help="use this Redis (default: start a private one)")
    p.add_argument("--out", type=Path, default=Path("bench/results/core.md"))
    return p.parse_args(argv)


def _run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    try:
        import uvloop

        return uvloop.run(main())
    except ImportError:
        return asyncio.run(main())


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    rates = (args.rate, args.high_rate) if args.high_rate else (args.rate,)
    options = Options(
        args.tasks, rates, args.seconds, args.concurrency, args.runs,
        baseline_seconds=args.baseline_seconds, default_logging=args.default_logging,
    )  # fmt: skip
    with contextlib.ExitStack() as stack:
        url = args.redis_url or stack.enter_context(private_redis())
        progress = Progress(console=Console(stderr=True), transient=True, refresh_per_second=4)
        stack.enter_context(progress)
        results = _run(run_benchmark(args.system, url, options, progress))
    report = render(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report + "\n")
    data = json.dumps(asdict(results), indent=2, default=str)
    args.out.with_suffix(".json").write_text(data + "\n")
    Console(soft_wrap=True).print(report, markup=False, highlight=False)


if __name__ == "__main__":
    main()
