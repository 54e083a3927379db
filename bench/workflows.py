"""What workflows cost: creating a large group, Redis bytes per member, ending it.

    .venv/bin/python -m bench.workflows [--members 10000] [--runs 3]
                                        [--out bench/results/workflows.md]

On a private redis-server: ``runs`` times, a group of ``members`` no-op tasks with a
callback is created (one round trip: ``Client.workflows.group``), its Redis bytes are
counted (``MEMORY USAGE`` of the workflow's keys, with its outcome bytes at full length,
plus what the member field adds to a task's hash), then every member is leased and
answered 64 at a time as a busy worker would, and the time of the finish call that ends
the group (it enqueues the callback with every result) is taken.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from arqd.client import Client
from arqd.core.lease import Answer
from arqd.core.settings import Settings
from arqd.core.task import NewTask
from arqd.store.connection import connect
from arqd.store.store import Store
from bench.procs import private_redis
from bench.report import machine_info, table

BATCH = 64  # tasks a busy worker leases and answers a call (worker.py)
Run = tuple[float, float, float]  # see _one_run


async def _one_run(client: Client, store: Store, members: int) -> Run:
    """Creation seconds, bytes a member adds, seconds of the finish that ends the group."""
    started = time.perf_counter()
    state = await client.workflows.group(
        [NewTask("m", i) for i in range(members)], on_failure="ignore", callback=NewTask("cb")
    )
    created = time.perf_counter() - started
    keys, redis = store.keys, store.redis
    size = await redis.memory_usage(keys.workflow("default", state.id)) or 0
    outcomes = keys.workflow_outcomes("default", state.id)
    await redis.setrange(outcomes, members - 1, b"\0")  # its length once every member ended
    size += await redis.memory_usage(outcomes) or 0
    plain = await client.enqueue("m", members - 1)
    member = state.steps[0].members[-1].id
    task_bytes = await redis.memory_usage(keys.task("default", member)) or 0
    plain_bytes = await redis.memory_usage(keys.task("default", plain.id)) or 0
    last = 0.0  # the last finish of members (not of the callback, nor the plain task)
    while leases := (await store.leases.dequeue("default", BATCH, "bench")).leases:
        answers = [Answer(lease, "succeeded", b"1") for lease in leases]
        started = time.perf_counter()
        await store.leases.finish("default", answers)
        if any(lease.id.startswith(state.id) and lease.type == "m" for lease in leases):
            last = time.perf_counter() - started
    return created, size / members + task_bytes - plain_bytes, last


async def measure(url: str, members: int, runs: int) -> tuple[list[Run], str]:
    settings = Settings(redis_url=url)
    client, store = Client.connect(url, settings), Store(connect(url), settings)
    try:
        version = str((await store.redis.info("server"))["redis_version"])
        results = []
        for _ in range(runs):
            results.append(await _one_run(client, store, members))
            await store.redis.flushdb()  # our private server
        return results, version
    finally:
        await client.close()
        await store.close()


def render(results: list[Run], version: str, members: int) -> str:
    created, per_member, ending = zip(*results, strict=True)
    lines = [f"# Workflows: a {members:,}-member group", ""]
    lines += table(["", ""], [*machine_info(version).items(), ("runs", str(len(results)))])
    rows = [
        ("created (one round trip), ms", created, 1000),
        ("Redis bytes a member adds", per_member, 1),
        ("the finish that ends the group (enqueues the callback), ms", ending, 1000),
    ]
    lines += table(
        ["figure", "median", "runs"],
        [
            (name, f"{statistics.median(v) * k:,.0f}", " / ".join(f"{x * k:,.0f}" for x in v))
            for name, v, k in rows
        ],
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.workflows", description=__doc__)
    p.add_argument("--members", type=int, default=10_000, help="members of the group (10000)")
    p.add_argument("--runs", type=int, default=3, help="runs (3)")
    p.add_argument("--out", type=Path, default=Path("bench/results/workflows.md"))
    args = p.parse_args(argv)
    with Console(stderr=True).status("creating and ending groups"), private_redis() as url:
        results, version = asyncio.run(measure(url, args.members, args.runs))
    report = render(results, version, args.members)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report + "\n")
    Console(soft_wrap=True).print(report, markup=False, highlight=False)


if __name__ == "__main__":
    main()
