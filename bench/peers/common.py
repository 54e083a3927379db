"""The producer side of every Python driver, and the one job every system runs.

Runs in the system's own environment with only the standard library and redis-py. A
driver module declares the library's app and job at import (worker CLIs want a module
attribute), from ``BENCH_REDIS_URL``, ``BENCH_QUEUE`` and ``BENCH_CONCURRENCY``, and
offers ``async def connect() -> Producer``. Run as ``python -m bench.peers.<name>_driver
COMMAND``, it prints one JSON line:

- ``enqueue --tasks N --mode one|batch --key K``: N jobs ``{"k": K}``, one call at a time
  or in batches, timed after one warm-up call; with Redis ``used_memory`` before and after.
- ``produce --rate R --seconds S --key K``: jobs ``{"t": time.time(), "k": K}`` at a steady
  rate on an absolute schedule for S seconds (0.5 s of warm-up first, into ``K:warm``).

The job: with ``t`` in its payload, RPUSH its enqueue-to-start latency (seconds) to ``k``;
else one INCR on ``k``. Completion is counted by that counter for every system.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import redis
import redis.asyncio as aioredis

Payload = dict[str, Any]
WARMUP = 0.5  # seconds


class Producer(Protocol):
    batch: bool

    async def enqueue_one(self, payload: Payload) -> None: ...

    async def enqueue_batch(self, payloads: Sequence[Payload]) -> None: ...

    async def close(self) -> None: ...


def settings() -> tuple[str, str, int]:
    """The Redis URL, queue name and concurrency the harness set for this process."""
    url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    return url, os.environ.get("BENCH_QUEUE", "bench"), int(os.environ.get("BENCH_CONCURRENCY", 1))


def quiet(logger: str) -> None:
    """Drop records below WARNING from one logger (a CLI that logs every task at INFO)."""
    logging.getLogger(logger).addFilter(lambda record: record.levelno >= logging.WARNING)


class _Clients:
    """The job's Redis clients, one of each kind per process, made on first use."""

    sync: redis.Redis | None = None
    asynchronous: aioredis.Redis | None = None


def job_sync(payload: Payload) -> None:
    started = time.time()
    if _Clients.sync is None:
        _Clients.sync = redis.Redis.from_url(settings()[0])
    if "t" in payload:
        _Clients.sync.rpush(payload["k"], started - payload["t"])
    else:
        _Clients.sync.incr(payload["k"])


async def job_async(payload: Payload) -> None:
    started = time.time()
    if _Clients.asynchronous is None:
        _Clients.asynchronous = aioredis.Redis.from_url(settings()[0])
    if "t" in payload:
        await _Clients.asynchronous.rpush(payload["k"], started - payload["t"])
    else:
        await _Clients.asynchronous.incr(payload["k"])


def _used_memory(r: redis.Redis) -> int:
    return int(r.info("memory")["used_memory"])


async def enqueue(producer: Producer, tasks: int, mode: str, key: str, size: int) -> Payload:
    if mode == "batch" and not producer.batch:
        raise RuntimeError("no batch enqueue API")
    r = redis.Redis.from_url(settings()[0])
    await producer.enqueue_one({"k": f"{key}:warm"})  # connect, load scripts
    before = _used_memory(r)
    payload = {"k": key}
    start = time.perf_counter()
    if mode == "batch":
        for i in range(0, tasks, size):
            await producer.enqueue_batch([payload] * min(size, tasks - i))
    else:
        for _ in range(tasks):
            await producer.enqueue_one(payload)
    seconds = time.perf_counter() - start
    grown = _used_memory(r) - before
    r.close()
    return {"tasks": tasks, "seconds": seconds, "bytes_per_task": grown / tasks}


async def produce(producer: Producer, rate: int, seconds: float, key: str) -> Payload:
    """Send at ``rate`` on an absolute schedule (task i is due at i / rate) for ``seconds``;
    when behind, all that is due goes in one batch, or one call at a time without a batch
    API. A producer that cannot keep up stops on time and sends fewer (``achieved``)."""
    await _steady(producer, rate, WARMUP, f"{key}:warm")
    sent, took = await _steady(producer, rate, seconds, key)
    return {"sent": sent, "seconds": took}


async def _steady(producer: Producer, rate: int, seconds: float, key: str) -> tuple[int, float]:
    total, sent = round(rate * seconds), 0
    start = time.perf_counter()
    while sent < total and (elapsed := time.perf_counter() - start) < seconds:
        due = min(total, int(elapsed * rate) + 1)
        if due - sent > 1 and producer.batch:
            await producer.enqueue_batch([{"t": time.time(), "k": key}] * (due - sent))
            sent = due
        elif due > sent:  # one call at a time, the clock checked before each
            await producer.enqueue_one({"t": time.time(), "k": key})
            sent += 1
        if sent >= due:
            await asyncio.sleep(max(0.0, start + sent / rate - time.perf_counter()))
    return sent, time.perf_counter() - start


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="A side-by-side benchmark driver")
    p.add_argument("command", choices=("enqueue", "produce"))
    p.add_argument("--tasks", type=int, default=20_000)
    p.add_argument("--mode", choices=("one", "batch"), default="one")
    p.add_argument("--batch", type=int, default=1_000)
    p.add_argument("--rate", type=int, default=500)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--key", default="bench:counter")
    return p.parse_args(argv)


async def _command(connect: Callable[[], Awaitable[Producer]], args: argparse.Namespace) -> Payload:
    producer = await connect()
    try:
        if args.command == "enqueue":
            return await enqueue(producer, args.tasks, args.mode, args.key, args.batch)
        return await produce(producer, args.rate, args.seconds, args.key)
    finally:
        await producer.close()


def main(module: str, argv: Sequence[str] | None = None) -> None:
    """Run one command with ``module``'s ``connect``. The module is imported by its own
    name, so that the job registered here is the one the worker imports (under ``-m`` the
    running copy is ``__main__``, a name no worker can import)."""
    connect: Callable[[], Awaitable[Producer]] = importlib.import_module(module).connect
    result = asyncio.run(_command(connect, _parse(argv)))
    print(json.dumps(result), flush=True)
