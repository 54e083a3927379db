"""The in-process workloads of ``python -m bench.core``: enqueue, processing, latency, memory.

Each measurement talks to the queue system through the ``System`` protocol, in a namespace
(key prefix) of its own, with real worker processes. Latency is also measured for bare
redis-py RPUSH → BLPOP between two processes: the floor this machine and client library
allow, to read the queue's own numbers against.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import TypeVar

import redis.asyncio as aioredis
from rich.progress import Progress, TaskID

from bench.model import (
    EnqueueResult,
    LatencyResult,
    MemoryResult,
    Options,
    Payload,
    ProcessingResult,
    Run,
)
from bench.procs import POLL, WorkerProcess, process_cpu, redis_cpu, until, worker_process
from bench.systems.protocol import Producer, System

T = TypeVar("T")
WARMUP = 0.5  # seconds of latency traffic sent, and discarded, before measuring
STALL = 20.0  # seconds without progress (start-up included) before a run is given up


class Bench:
    """Runs each measurement of one system against one Redis."""

    def __init__(
        self,
        make: Callable[[], System],
        redis_url: str,
        r: aioredis.Redis,
        options: Options,
        progress: Progress,
    ) -> None:
        self.make = make
        self.redis_url = redis_url
        self.redis = r
        self.options = options
        self.progress = progress

    async def _in_namespace(self, work: Callable[[System], Awaitable[T]]) -> T:
        system = self.make()
        try:
            return await work(system)
        finally:
            await system.close()

    async def _fill(self, system: System, task: str, payload: Payload, n: int) -> None:
        size = self.options.batch
        for start in range(0, n, size):
            await system.enqueue_batch(task, [payload] * min(size, n - start))

    # Enqueue.

    async def enqueue(self) -> list[EnqueueResult]:
        """Enqueue no-op tasks one at a time (then the bare-INCR floor), from concurrent
        callers, and in batches."""
        callers, batch = self.options.callers, self.options.batch
        modes = [
            ("one at a time", 1, 1),
            (f"one at a time, {callers} concurrent callers", callers, 1),
            (f"batches of {batch:,}", 1, batch),
        ]
        results = [
            await self._in_namespace(self._enqueue_timed(mode, c, b)) for mode, c, b in modes
        ]
        return [results[0], await self._incr(), *results[1:]]

    async def _incr(self) -> EnqueueResult:
        """``tasks`` bare INCRs from redis-py, one at a time: the client-side floor the
        one-at-a-time rate is read against (this machine's speed varies)."""
        key = f"bench-incr-{uuid.uuid4().hex[:8]}"
        await self.redis.incr(key)
        async with self._timed("baseline: bare redis-py INCR, one at a time") as result:
            for _ in range(self.options.tasks):
                await self.redis.incr(key)
        await self.redis.unlink(key)
        return result()

    @contextlib.asynccontextmanager
    async def _timed(self, mode: str) -> AsyncIterator[Callable[[], EnqueueResult]]:
        """Time the block: wall clock, this process's CPU and redis-server's CPU; the
        result is ready once the block has ended."""
        times: list[float] = []

        async def read() -> None:
            times.extend((time.perf_counter(), process_cpu(), await redis_cpu(self.redis)))

        def result() -> EnqueueResult:
            n = self.options.tasks
            (t0, c0, r0), (t1, c1, r1) = times[:3], times[3:]
            return EnqueueResult(mode, n, t1 - t0, (c1 - c0) / n * 1e6, (r1 - r0) / n * 1e6)

        await read()
        yield result
        await read()

    def _enqueue_timed(
        self, mode: str, callers: int, batch: int
    ) -> Callable[[System], Awaitable[EnqueueResult]]:
        n = self.options.tasks

        async def caller(system: System, step: TaskID, count: int) -> None:
            for i in range(count):
                await system.enqueue_one("noop", {})
                if i % 500 == 499:
                    self.progress.advance(step, 500)

        async def timed(system: System) -> EnqueueResult:
            await system.enqueue_one("noop", {})  # connect and load the scripts first
            step = self.progress.add_task(f"enqueue {mode}", total=n)
            async with self._timed(mode) as result:
                if batch > 1:
                    await self._fill(system, "noop", {}, n)
                else:
                    shares = [n // callers + (i < n % callers) for i in range(callers)]
                    await asyncio.gather(*(caller(system, step, share) for share in shares))
            self.progress.remove_task(step)
            return result()

        return timed

    # Processing.

    async def processing(
        self, workload: str, concurrency: int, quiet: bool = True, runs: int | None = None
    ) -> ProcessingResult:
        """``runs`` runs: ``tasks`` queued, then one worker process drains them."""
        done = []
        for _ in range(runs or self.options.runs):
            done.append(
                await self._in_namespace(lambda s: self._run(s, workload, concurrency, quiet))
            )
        return ProcessingResult(workload, concurrency, quiet, self.options.tasks, done)

    async def _run(self, system: System, workload: str, concurrency: int, quiet: bool) -> Run:
        n = self.options.tasks
        counter = system.scratch_key("counter")
        counts = workload.startswith("incr")  # incr and incr_plain
        await self._fill(system, workload, {"k": counter} if counts else {}, n)
        step = self.progress.add_task(f"{workload}, concurrency {concurrency}", total=n)
        try:
            with worker_process(*system.worker(concurrency, quiet)) as worker:
                wall, done, worker_cpu, server_cpu = await self._drain(system, worker, step)
                rss = worker.peak_rss()
        finally:
            self.progress.remove_task(step)
        if failed := await system.failed():
            raise RuntimeError(f"{workload}: {failed} tasks failed")
        if counts and int(await self.redis.get(counter) or 0) != n:
            raise RuntimeError(f"{workload}: the counter is not {n}")
        busy = await system.busy_seconds() or wall
        return Run(n / busy, worker_cpu / done * 1e6, server_cpu / done * 1e6, rss)

    async def _drain(
        self, system: System, worker: WorkerProcess, step: TaskID
    ) -> tuple[float, int, float, float]:
        """Wait until nothing is pending. Returns wall seconds, and the tasks finished and
        CPU seconds used (worker, Redis) from the first poll that saw progress to the end,
        so the worker's start-up is left out."""
        n = self.options.tasks
        first: tuple[float, int, float, float] | None = None
        last_left, stalled_since = n, time.monotonic()
        while (left := await system.pending()) > 0:
            worker.check()
            if first is None and left < n:
                first = (
                    time.perf_counter(),
                    left,
                    worker.cpu_seconds(),
                    await redis_cpu(self.redis),
                )
            if left < last_left:
                last_left, stalled_since = left, time.monotonic()
            elif time.monotonic() - stalled_since > STALL:
                failed = await system.failed()
                raise RuntimeError(f"no progress for {STALL:g} s: {left} pending, {failed} failed")
            self.progress.update(step, completed=n - left)
            await asyncio.sleep(POLL)
        now, worker_cpu, server_cpu = (
            time.perf_counter(),
            worker.cpu_seconds(),
            await redis_cpu(self.redis),
        )
        t0, left0, w0, r0 = first or (now, n, worker_cpu, server_cpu)
        return now - t0, max(1, left0), worker_cpu - w0, server_cpu - r0

    # Latency.

    async def latency(self, concurrency: int) -> list[LatencyResult]:
        """Enqueue-to-start latency at each steady rate, one worker process running idle."""

        async def run(system: System) -> list[LatencyResult]:
            label = f"{system.name}, concurrency {concurrency}"
            with worker_process(*system.worker(concurrency)) as worker:
                await until(system.worker_ready, worker.check, 30)
                return [
                    await self._latency_at(system, worker, label, rate)
                    for rate in self.options.rates
                ]

        return await self._in_namespace(run)

    async def _latency_at(
        self, system: System, worker: WorkerProcess, label: str, rate: int
    ) -> LatencyResult:
        await _produce(system, "stamp", rate, WARMUP, system.scratch_key("warm"))
        key = system.scratch_key(f"lat{rate}")
        with self._ticking(f"latency at {rate:,}/s", self.options.seconds) as tick:
            sent, took = await _produce(system, "stamp", rate, self.options.seconds, key, tick)
        await system.enqueue_one("stamp", {"k": key, "flush": True})

        async def recorded() -> bool:
            return int(await self.redis.llen(key)) >= sent

        await until(recorded, worker.check, 30 + sent / 500)
        return _summary(label, rate, sent / took, await self.redis.lrange(key, 0, -1))

    async def baseline_latency(self) -> LatencyResult:
        """Bare redis-py RPUSH → BLPOP at the first rate, into a second process."""
        rate, seconds = self.options.rates[0], self.options.baseline_seconds
        key = f"bench-baseline-{uuid.uuid4().hex[:8]}"
        raw = _RawList(self.redis, f"{key}:q")
        command = [sys.executable, "-c", BLPOP_CONSUMER, self.redis_url, key]
        with worker_process(command, dict(os.environ)) as consumer:
            await until(lambda: self.redis.exists(f"{key}:ready"), consumer.check, 30)
            with self._ticking(f"baseline at {rate:,}/s", seconds) as tick:
                sent, took = await _produce(raw, "", rate, seconds, "", tick)
            await raw.enqueue_one("", {"flush": True})
            await until(lambda: _exited(consumer), consumer.check, 30)
        samples = await self.redis.lrange(f"{key}:lat", 0, -1)
        await self.redis.unlink(f"{key}:q", f"{key}:lat", f"{key}:ready")
        return _summary("baseline: redis-py RPUSH → BLPOP", rate, sent / took, samples)

    @contextlib.contextmanager
    def _ticking(self, what: str, seconds: float) -> Iterator[Callable[[float], None]]:
        step = self.progress.add_task(what, total=seconds)
        try:
            yield lambda elapsed: self.progress.update(step, completed=elapsed)
        finally:
            self.progress.remove_task(step)

    # Memory.

    async def memory(self) -> MemoryResult:
        """Redis bytes per queued no-op task: used_memory before and after, no worker."""

        async def fill(system: System) -> MemoryResult:
            await system.enqueue_one("noop", {})  # the queue's fixed structures, the scripts
            before = await self._used_memory()
            await self._fill(system, "noop", {}, self.options.tasks)
            grown = await self._used_memory() - before
            n = self.options.tasks
            return MemoryResult(n, grown / n, await system.memory_breakdown())

        return await self._in_namespace(fill)

    async def _used_memory(self) -> int:
        return int((await self.redis.info("memory"))["used_memory"])


# Runs in its own interpreter: argv[1] Redis URL, argv[2] key prefix.
BLPOP_CONSUMER = """
import json, sys, time, redis
r, key, samples = redis.Redis.from_url(sys.argv[1]), sys.argv[2], []
r.set(key + ":ready", 1)
while True:
    _, raw = r.blpop([key + ":q"])
    now, payload = time.time(), json.loads(raw)
    if payload.get("flush"):
        break
    samples.append(now - payload["t"])
if samples:
    r.rpush(key + ":lat", *samples)
"""


class _RawList:
    """A Producer that RPUSHes payloads as JSON onto one list: the baseline's queue."""

    def __init__(self, r: aioredis.Redis, key: str) -> None:
        self.redis, self.key = r, key

    async def enqueue_one(self, task: str, payload: Payload) -> None:
        await self.redis.rpush(self.key, json.dumps(payload))

    async def enqueue_batch(self, task: str, payloads: Sequence[Payload]) -> None:
        await self.redis.rpush(self.key, *(json.dumps(p) for p in payloads))


async def _exited(process: WorkerProcess) -> bool:
    return process.process.poll() is not None


async def _produce(
    producer: Producer,
    task: str,
    rate: int,
    seconds: float,
    key: str,
    on_tick: Callable[[float], None] | None = None,
) -> tuple[int, float]:
    """Send tasks stamped with ``time.time()`` at ``rate`` per second on an absolute schedule
    (task i is due at i / rate); when behind, all that is due goes in one batch.
    Returns (tasks sent, seconds taken)."""
    total, sent = round(rate * seconds), 0
    start = time.perf_counter()
    while sent < total:
        due = min(total, int((time.perf_counter() - start) * rate) + 1)
        if due > sent:
            payload = {"t": time.time(), "k": key}
            if due - sent == 1:
                await producer.enqueue_one(task, payload)
            else:
                await producer.enqueue_batch(task, [payload] * (due - sent))
            sent = due
            if on_tick:
                on_tick(time.perf_counter() - start)
        await asyncio.sleep(max(0.0, start + sent / rate - time.perf_counter()))
    return sent, time.perf_counter() - start


def _summary(label: str, rate: int, achieved: float, raw: Sequence[bytes | str]) -> LatencyResult:
    """Percentiles (nearest rank) of samples given in seconds, reported in ms."""
    ms = sorted(float(v) * 1000 for v in raw)
    if not ms:
        raise RuntimeError(f"{label}: no latency samples were recorded")
    p50, p95, p99 = (ms[max(0, math.ceil(q * len(ms)) - 1)] for q in (0.50, 0.95, 0.99))
    return LatencyResult(label, rate, achieved, len(ms), p50, p95, p99, ms[-1])
