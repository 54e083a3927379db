"""What ``ARQD_REPLICA_ACKS=1`` costs: enqueue rates with and without waiting for a replica.

    .venv/bin/python -m bench.replica_acks [--rounds 2] [--out bench/results/replica-acks.md]

Starts a private master and a replica of it (no persistence), then measures, alternating
the two settings each round: single enqueues one after another, 50 concurrent callers,
and batches of 1,000. Reports tasks per second (median of the rounds) and the client's CPU
per task.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import redis

from arqd.client import Client
from arqd.core.settings import Settings
from arqd.core.task import NewTask
from bench.procs import redis_process

REPO = Path(__file__).resolve().parents[1]
Run = Callable[[Client], Awaitable[int]]


async def one_at_a_time(client: Client) -> int:
    for _ in range(3000):
        await client.enqueue("echo", {})
    return 3000


async def concurrent(client: Client) -> int:
    for _ in range(200):
        await asyncio.gather(*(client.enqueue("echo", {}) for _ in range(50)))
    return 10_000


async def batches(client: Client) -> int:
    for _ in range(20):
        await client.enqueue_many([NewTask("echo", {}) for _ in range(1000)])
    return 20_000


RUNS: dict[str, Run] = {
    "one at a time": one_at_a_time,
    "50 concurrent callers": concurrent,
    "batches of 1,000": batches,
}


async def measure(url: str, acks: int, run: Run) -> tuple[float, float]:
    """(tasks/s, client CPU µs a task) of ``run`` with ``acks`` replica acks."""
    settings = Settings(redis_url=url, key_prefix=f"b{uuid.uuid4().hex[:8]}", replica_acks=acks)
    async with Client.from_settings(settings) as client:
        await client.enqueue("echo")  # connected, scripts loaded
        wall, cpu = time.perf_counter(), time.process_time()
        tasks = await run(client)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        await client.store.redis.flushdb()
    return tasks / wall, cpu / tasks * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "replica-acks.md")
    args = parser.parse_args()
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    with redis_process() as (url, _), redis_process() as (replica_url, _):
        replica = redis.Redis.from_url(replica_url)
        master = redis.Redis.from_url(url)
        replica.replicaof("127.0.0.1", master.connection_pool.connection_kwargs["port"])
        while replica.info("replication").get("master_link_status") != "up":
            time.sleep(0.05)  # the first sync is done: the replica acknowledges writes
        for round_ in range(args.rounds):
            for name, run in RUNS.items():
                for acks in (0, 1) if round_ % 2 == 0 else (1, 0):
                    measured = asyncio.run(measure(url, acks, run))
                    results.setdefault((name, acks), []).append(measured)
                    print(f"{name}, acks {acks}: {measured[0]:,.0f} tasks/s", flush=True)
    lines = [
        "# Enqueue with and without `ARQD_REPLICA_ACKS=1`",
        "",
        "A master and one replica on this machine; median of "
        f"{args.rounds} rounds, the two settings alternating.",
        "",
        "| enqueue | acks 0: tasks/s | acks 1: tasks/s | change | client CPU µs/task, 0 → 1 |",
        "|---|---|---|---|---|",
    ]
    for name in RUNS:
        off, on = results[(name, 0)], results[(name, 1)]
        rate_off = statistics.median(r for r, _ in off)
        rate_on = statistics.median(r for r, _ in on)
        cpu_off = statistics.median(c for _, c in off)
        cpu_on = statistics.median(c for _, c in on)
        change = (rate_on - rate_off) / rate_off * 100
        lines.append(
            f"| {name} | {rate_off:,.0f} | {rate_on:,.0f} | {change:+.0f}% | "
            f"{cpu_off:.1f} → {cpu_on:.1f} |"
        )
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
