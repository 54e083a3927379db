"""CPU per call of arqd's single enqueue, next to a bare redis-py INCR (the floor).

    .venv/bin/python -m bench.percall [--calls 20000] [--redis-url URL]

One caller, one call at a time, under uvloop, as ``bench.core``'s "one at a time" row;
client CPU is this process's, Redis CPU is from ``INFO cpu``. Two rounds each, so a
noisy neighbour shows as a disagreement between them.
"""

from __future__ import annotations

import argparse
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
import uvloop

from arqd.client import Client
from arqd.core.settings import Settings
from arqd.store.connection import connect_server
from arqd.store.store import Store
from bench.procs import private_redis, process_cpu, redis_cpu


async def _measure(
    name: str, call: Callable[[], Awaitable[object]], r: aioredis.Redis, n: int
) -> None:
    redis0, wall0, cpu0 = await redis_cpu(r), time.perf_counter(), process_cpu()
    for _ in range(n):
        await call()
    wall, cpu = time.perf_counter() - wall0, process_cpu() - cpu0
    redis = await redis_cpu(r) - redis0
    print(
        f"{name:8s} {n / wall:8,.0f}/s  client CPU {cpu / n * 1e6:6.1f} µs/call"
        f"  Redis CPU {redis / n * 1e6:6.1f} µs/call"
    )


async def run(url: str, n: int) -> None:
    prefix = f"p{uuid.uuid4().hex[:5]}"
    client = Client(Store(connect_server(url), Settings(redis_url=url, key_prefix=prefix)))
    r = client.store.redis
    assert isinstance(r, aioredis.Redis)  # one server
    try:
        await client.enqueue("noop", {})  # connect and load the scripts first
        for _ in range(2):
            await _measure("INCR", lambda: r.incr(f"{prefix}:n"), r, n)
            await _measure("enqueue", lambda: client.enqueue("noop", {}), r, n)
    finally:
        keys = [k async for k in r.scan_iter(match=f"{prefix}:*", count=1000)]
        for i in range(0, len(keys), 1000):
            await r.unlink(*keys[i : i + 1000])
        await client.close()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.percall", description=__doc__)
    p.add_argument("--calls", type=int, default=20_000)
    p.add_argument("--redis-url", help="use this Redis (default: start a private one)")
    args = p.parse_args()
    with contextlib.ExitStack() as stack:
        url = args.redis_url or stack.enter_context(private_redis())
        uvloop.run(run(url, args.calls))


if __name__ == "__main__":
    main()
