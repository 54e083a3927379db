"""What 10,000 ``ctx.progress`` (or ``ctx.log``) calls in a second cost: Redis writes,
events, and the handler's time per call.

    .venv/bin/python -m bench.progress [--calls 10000] [--redis-url URL]

One worker runs each case once: calls spread evenly over one second (an async handler,
then a sync one in the worker's thread pool), then as fast as the handler can make them.
Writes are the attempt's calls to ``progress.lua``, events the ``progress`` and ``log``
entries of the task in its queue's stream.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass

from arqd.client import Client
from arqd.core.settings import Settings
from arqd.store.connection import connect_server
from arqd.store.store import Store
from arqd.worker import Registry, TaskContext, Worker
from bench.procs import private_redis


@dataclass
class Seen:
    context: TaskContext | None = None
    seconds: float = 0.0  # the handler's time in its calls


def registry_of(seen: dict[str, Seen], calls: int) -> Registry:
    registry = Registry()

    def report(ctx: TaskContext, kind: str, n: int) -> None:
        if kind == "log":
            ctx.log(f"line {n}")
        else:
            ctx.progress(n / calls, f"step {n}")

    @registry.task()
    async def spread(payload: list[str], ctx: TaskContext) -> None:
        kind, name = payload
        started = time.monotonic()
        for n in range(1, calls + 1):
            report(ctx, kind, n)
            if n % 100 == 0:
                await asyncio.sleep(max(0.0, started + n / calls - time.monotonic()))
        seen[name] = Seen(ctx)

    @registry.task()
    def spread_sync(payload: list[str], ctx: TaskContext) -> None:
        kind, name = payload
        started = time.monotonic()
        for n in range(1, calls + 1):
            report(ctx, kind, n)
            if n % 100 == 0:
                time.sleep(max(0.0, started + n / calls - time.monotonic()))
        seen[name] = Seen(ctx)

    @registry.task()
    async def tight(payload: list[str], ctx: TaskContext) -> None:
        kind, name = payload
        started = time.perf_counter()
        for n in range(1, calls + 1):
            report(ctx, kind, n)
        seen[name] = Seen(ctx, time.perf_counter() - started)

    return registry


CASES = (
    ("spread", "progress", "async, over 1 s"),
    ("spread_sync", "progress", "sync (thread), over 1 s"),
    ("tight", "progress", "async, back to back"),
    ("spread", "log", "ctx.log, async, over 1 s"),
)


async def run(url: str, calls: int) -> None:
    settings = Settings(redis_url=url, key_prefix=f"b{uuid.uuid4().hex[:5]}")
    store = Store(connect_server(url), settings)
    client = Client(store)
    seen: dict[str, Seen] = {}
    worker = Worker(registry_of(seen, calls), store)
    running = asyncio.create_task(worker.run(install_signals=False))
    print(f"{calls:,} calls per attempt")
    try:
        for number, (task_type, kind, label) in enumerate(CASES):
            name = f"case{number}"
            task = await client.enqueue(task_type, [kind, name])
            await client.wait(task.id, timeout=60)
            events = [
                e
                for e in await client.task_history(task)
                if e.fields[b"event"] == b"log" or e.fields[b"event"] == b"progress"
            ]
            context = seen[name].context
            report = context.report if context is not None else None
            writes = report.writes if report is not None else 0
            per_call = seen[name].seconds / calls * 1e6
            cost = f", {per_call:.2f} µs a call" if seen[name].seconds else ""
            print(f"{kind:8s} {label:26s} {writes:3d} writes  {len(events):3d} events{cost}")
    finally:
        worker.stop()
        await running
        await client.close()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.progress", description=__doc__)
    p.add_argument("--calls", type=int, default=10_000)
    p.add_argument("--redis-url", help="use this Redis (default: start a private one)")
    args = p.parse_args()
    with contextlib.ExitStack() as stack:
        url = args.redis_url or stack.enter_context(private_redis())
        asyncio.run(run(url, args.calls))


if __name__ == "__main__":
    main()
