"""What a Redis Cluster costs arqd: enqueue and processing rates on a 3-master cluster with
three queues, one on each master, against one server, in the same run.

    .venv/bin/python -m bench.cluster [--rounds 3] [--out bench/results/cluster.md]

On this 2-core machine the three masters share the cores with the client, so a cluster
cannot show scale-out here; the question is what the routing costs (a slot lookup per
call, a shared connection per master, an idle wait per slot). Each round runs every
workload on both, alternating which goes first: single enqueues one after another, 50
concurrent callers, batches of 1,000 spread over the three queues, and processing (one
worker over the three queues, 200 at a time, 20,000 no-op tasks already queued); and the
enqueue-to-start latency of tasks sent one at a time to an idle worker over the three
queues (on a cluster it waits on every master at once). Reports tasks per second (median
of the rounds), the client's CPU per task, and latency percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from arqd.client import Client
from arqd.core.settings import Settings
from arqd.core.task import NewTask
from arqd.store.nodes import slot_of
from arqd.worker import Registry, Worker
from bench.procs import cluster_processes, redis_process

REPO = Path(__file__).resolve().parents[1]
Run = Callable[[Client, list[str]], Awaitable[int]]
PROCESSED = 20_000


async def one_at_a_time(client: Client, queues: list[str]) -> int:
    for queue in itertools.islice(itertools.cycle(queues), 3000):
        await client.enqueue("noop", {}, queue=queue)
    return 3000


async def concurrent(client: Client, queues: list[str]) -> int:
    for _ in range(200):
        spread = itertools.islice(itertools.cycle(queues), 50)
        await asyncio.gather(*(client.enqueue("noop", {}, queue=q) for q in spread))
    return 10_000


async def batches(client: Client, queues: list[str]) -> int:
    for _ in range(20):
        spread = itertools.islice(itertools.cycle(queues), 1000)
        await client.enqueue_many([NewTask("noop", {}, queue=q) for q in spread])
    return 20_000


async def processing(client: Client, queues: list[str]) -> int:
    """The time to run ``PROCESSED`` queued tasks (the enqueue is not timed: see main)."""
    done = asyncio.Event()
    seen = 0
    registry = Registry()

    @registry.task()
    async def noop(payload: object) -> None:
        nonlocal seen
        seen += 1
        if seen == PROCESSED:
            done.set()

    worker = Worker(registry, client.store, queues=queues, concurrency=200)
    running = asyncio.create_task(worker.run(install_signals=False))
    await done.wait()
    worker.stop()
    await running
    return PROCESSED


LATENCY_TASKS = 1000
LATENCY_RATE = 250.0  # tasks a second, one at a time, over the queues in turn


async def latency(client: Client, queues: list[str]) -> list[float]:
    """Enqueue-to-start times (ms) of tasks enqueued one at a time at ``LATENCY_RATE``
    to an idle worker over the queues (on a cluster, waiting on every master at once)."""
    started: list[float] = []
    done = asyncio.Event()
    registry = Registry()

    @registry.task()
    async def stamp(sent: float) -> None:
        started.append((time.perf_counter() - sent) * 1000)
        if len(started) == LATENCY_TASKS:
            done.set()

    worker = Worker(registry, client.store, queues=queues, concurrency=200)
    running = asyncio.create_task(worker.run(install_signals=False))
    await asyncio.sleep(0.5)  # idle: waiting on every queue
    begin = time.perf_counter()
    for n, queue in enumerate(itertools.islice(itertools.cycle(queues), LATENCY_TASKS)):
        await asyncio.sleep(max(0.0, begin + n / LATENCY_RATE - time.perf_counter()))
        await client.enqueue("stamp", time.perf_counter(), queue=queue)
    await done.wait()
    worker.stop()
    await running
    return started


RUNS: dict[str, Run] = {
    "enqueue one at a time": one_at_a_time,
    "enqueue, 50 concurrent callers": concurrent,
    "enqueue batches of 1,000": batches,
    "processing, 200 at a time": processing,
}


def spread_queues(count: int = 3) -> list[str]:
    """Queue names in ``count`` different thirds of the slot range: one per master of
    a cluster whose masters split the slots evenly (as ``cluster_processes`` makes it)."""
    found: dict[int, str] = {}
    for n in itertools.count():
        name = f"bench-{n}"
        third = slot_of(f"{{{name}}}") * count // 16384
        found.setdefault(third, name)
        if len(found) == count:
            return [found[i] for i in range(count)]
    raise AssertionError("unreachable")


async def measure(url: str, name: str, queues: list[str]) -> tuple[float, float]:
    """(tasks/s, client CPU µs a task) of workload ``name`` on ``url``."""
    settings = Settings(redis_url=url, key_prefix=f"b{uuid.uuid4().hex[:8]}")
    async with Client.from_settings(settings) as client:
        for queue in queues:
            await client.enqueue("noop", queue=queue)  # connected, scripts loaded
        if name.startswith("processing"):
            await batches(client, queues)  # PROCESSED tasks (with the 3 above: more)
        wall, cpu = time.perf_counter(), time.process_time()
        tasks = await RUNS[name](client, queues)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        await client.store.redis.flushall()
    return tasks / wall, cpu / tasks * 1e6


async def measure_latency(url: str, queues: list[str]) -> tuple[float, float]:
    """(p50, p99) of enqueue-to-start, ms."""
    settings = Settings(redis_url=url, key_prefix=f"b{uuid.uuid4().hex[:8]}")
    async with Client.from_settings(settings) as client:
        times = sorted(await latency(client, queues))
        await client.store.redis.flushall()
    return times[len(times) // 2], times[int(len(times) * 0.99)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "cluster.md")
    args = parser.parse_args()
    queues = spread_queues()
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    latencies: dict[str, list[tuple[float, float]]] = {}
    with redis_process() as (server, _), cluster_processes(3) as cluster:
        urls = {"one server": server, "3-master cluster": cluster}
        for round_ in range(args.rounds):
            order = list(urls) if round_ % 2 == 0 else list(reversed(urls))
            for name in RUNS:
                for kind in order:
                    measured = asyncio.run(measure(urls[kind], name, queues))
                    results.setdefault((name, kind), []).append(measured)
                    print(f"{name}, {kind}: {measured[0]:,.0f} tasks/s", flush=True)
            for kind in order:
                waited = asyncio.run(measure_latency(urls[kind], queues))
                latencies.setdefault(kind, []).append(waited)
                print(f"latency, {kind}: p50 {waited[0]:.2f} ms, p99 {waited[1]:.2f} ms")
    lines = [
        "# arqd on a 3-master Redis Cluster against one server",
        "",
        f"Queues {', '.join(queues)}, one on each master; median of {args.rounds} rounds,"
        " the two alternating (change: the median of each round's ratio); both on this"
        " 2-core machine (`python -m bench.cluster`).",
        "",
        "| workload | one server: tasks/s | cluster: tasks/s | change | client CPU µs/task |",
        "|---|---|---|---|---|",
    ]
    for name in RUNS:
        one, many = results[(name, "one server")], results[(name, "3-master cluster")]
        rate_one, rate_many = (statistics.median(r for r, _ in x) for x in (one, many))
        cpu_one, cpu_many = (statistics.median(c for _, c in x) for x in (one, many))
        # Each round's two runs are neighbours in time: the change is the median of the
        # rounds' own ratios, which a slow minute of a shared machine moves less.
        change = statistics.median((m[0] / o[0] - 1) * 100 for o, m in zip(one, many, strict=True))
        lines.append(
            f"| {name} | {rate_one:,.0f} | {rate_many:,.0f} | {change:+.1f}% | "
            f"{cpu_one:.1f} → {cpu_many:.1f} |"
        )
    lines += [
        "",
        f"Enqueue-to-start, {LATENCY_TASKS:,} tasks one at a time at {LATENCY_RATE:.0f} a second"
        " over the three queues, to an idle worker (median of the rounds):",
        "",
        "| | one server | cluster |",
        "|---|---|---|",
    ]
    for at, label in ((0, "p50 ms"), (1, "p99 ms")):
        server_ms, cluster_ms = (statistics.median(x[at] for x in latencies[k]) for k in urls)
        lines.append(f"| {label} | {server_ms:.2f} | {cluster_ms:.2f} |")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
