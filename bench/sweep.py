"""How the comparison's tuned settings were chosen: processing rate per concurrency.

    .venv/bin/python -m bench.sweep [--tasks 5000] [NAME...]

For each system, its tuned worker with each concurrency in ``SWEEP`` drains ``--tasks``
queued INCR jobs (batch-enqueued where the library can), on a private Redis; one line per
setting. The best value went into the system's ``tuned`` setting (``bench/systems/``).
RQ has no concurrency within one process and is not swept.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from collections.abc import Sequence

import redis.asyncio as aioredis
from rich.progress import Progress

from bench.procs import private_redis
from bench.sidebyside import Limits, SideBySide, SystemRun, reason
from bench.systems.catalog import BY_NAME

ASYNC = (10, 20, 50, 100, 200, 500)
THREADS = (1, 4, 8, 16, 32)
SWEEP = {
    "arqd": ASYNC,
    "saq": ASYNC,
    "arq": ASYNC,
    "taskiq": ASYNC,
    "streaq": ASYNC,
    "bullmq": (1, *ASYNC),
    "dramatiq": THREADS,
    "huey": THREADS,
    "celery": THREADS[1:],
}


async def sweep(name: str, url: str, r: aioredis.Redis, tasks: int, progress: Progress) -> None:
    peer = BY_NAME[name]
    for concurrency in SWEEP[name]:
        tuned = dataclasses.replace(peer.tuned, concurrency=concurrency)
        bench = SideBySide(dataclasses.replace(peer, tuned=tuned), url, r,
                           Limits(tasks=tasks, max_seconds=20), progress)  # fmt: skip
        run = SystemRun(name)
        await r.flushall()
        mode = "batch" if peer.batch else "one"
        try:
            await bench.driver("enqueue", "--tasks", str(tasks), "--mode", mode)
            await bench.process(run, "tuned", tuned)
            figure = f"{run.tuned.rate:,.0f} tasks/s" if run.tuned else "-"
        except Exception as exc:
            figure = f"failed: {reason(exc)}"
        progress.console.print(f"{name}: {tuned.label.split()[0]} {concurrency}: {figure}")


async def main_async(names: Sequence[str], tasks: int) -> None:
    with private_redis() as url, Progress(transient=True) as progress:
        r = aioredis.Redis.from_url(url)
        try:
            for name in names:
                await sweep(name, url, r, tasks, progress)
        finally:
            await r.aclose()


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.sweep", description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", metavar="NAME", help=", ".join(SWEEP))
    p.add_argument("--tasks", type=int, default=5_000)
    args = p.parse_args(argv)
    if unknown := set(args.names) - set(SWEEP):
        p.error(f"unknown: {', '.join(sorted(unknown))}; known: {', '.join(SWEEP)}")
    asyncio.run(main_async(args.names or list(SWEEP), args.tasks))


if __name__ == "__main__":
    main()
