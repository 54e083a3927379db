"""``arqd bench``: arqd's own workloads against any Redis, with progress bars and a summary.

Enqueue one at a time and in batches, processing by one worker process
(``arqd worker arqd.benchmark:registry``, a subprocess) for no-op and INCR tasks, and
enqueue-to-start latency at a steady rate. Everything happens under a key prefix of its
own, deleted at the end: the Redis may be a shared one, and nothing else in it is touched.

``registry`` declares the benchmark's tasks: ``noop`` does nothing; ``incr`` does one INCR
on the key in its payload (``k``); ``stamp`` RPUSHes its enqueue-to-start latency (now minus
the producer's ``time.time()`` in ``t``, in seconds) to ``k``. The side-by-side comparison
in the repository's ``bench/`` runs the same tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import IO, TYPE_CHECKING, Any

from arqd.core.settings import Settings
from arqd.core.task import NewTask
from arqd.store.connection import RedisClient, connect, connect_server, resolve_url
from arqd.store.pipelined import PipelinedRedis
from arqd.store.topology import cluster_target
from arqd.worker import Registry

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID
    from rich.table import Table

    from arqd.client import Client

# rich and the client are imported where they are used: a worker of this module's task
# types (bench.compare's arqd worker) loads neither (bench.compare, worker peak RSS).

BATCH = 1_000  # tasks per enqueue_many call
POLL = 0.02  # seconds between progress polls
STALL = 30.0  # seconds without progress before a phase is given up

registry = Registry()


@functools.cache
def handler_redis() -> RedisClient:
    """The worker process's Redis client for the handlers, made on first use: a
    ``PipelinedRedis``, so the commands of concurrent handlers share round trips (on a
    cluster, redis-py's cluster client)."""
    url = resolve_url(Settings.from_env())
    if cluster_target(url) is not None:
        return connect(url)
    return connect_server(url, client=PipelinedRedis)


@registry.task()
async def noop(payload: Any) -> None:
    """Nothing at all: the queue's own cost per task."""


@registry.task()
async def incr(payload: Any) -> None:
    """One INCR on ``payload["k"]``: the smallest task that does real I/O."""
    await handler_redis().incr(payload["k"])


@registry.task()
async def stamp(payload: Any) -> None:
    """RPUSH this task's enqueue-to-start latency in seconds to ``payload["k"]``."""
    started = time.time()
    await handler_redis().rpush(payload["k"], started - payload["t"])


class _Run:
    """One benchmark run: a client under a fresh key prefix, and the progress display."""

    def __init__(self, redis_url: str, concurrency: int, progress: Progress) -> None:
        self.prefix = f"bench-{uuid.uuid4().hex[:8]}"
        self.settings = Settings(redis_url=redis_url, key_prefix=self.prefix)
        from arqd.client import Client

        self.client = Client.connect(redis_url, self.settings)
        self.redis = self.client.store.redis
        self.concurrency = concurrency
        self.progress = progress

    def key(self, name: str) -> str:
        return f"{self.prefix}:bench:{name}"

    async def pending(self) -> int:
        s = (await self.client.stats(self.settings.queue))[0]
        return s.queued + s.scheduled + s.active

    async def fill(self, task: str, payload: dict[str, Any], n: int) -> list[str]:
        ids: list[str] = []
        for start in range(0, n, BATCH):
            count = min(BATCH, n - start)
            tasks = await self.client.enqueue_many([NewTask(task, payload) for _ in range(count)])
            ids += [t.id for t in tasks]
        return ids

    async def busy_seconds(self, ids: list[str]) -> float | None:
        return await busy_seconds(self.client, ids)

    @contextlib.asynccontextmanager
    async def worker(self) -> AsyncIterator[_Worker]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARQD_")}
        env.update(
            REDIS_URL=self.settings.redis_url or "",
            ARQD_KEY_PREFIX=self.prefix,
            ARQD_CONCURRENCY=str(self.concurrency),
            ARQD_LOG_LEVEL="WARNING",  # INFO logs a line per task
            METRICS_PORT="0",
        )
        command = [sys.executable, "-m", "arqd", "worker", "arqd.benchmark:registry"]
        with tempfile.TemporaryFile() as log:
            process = await asyncio.create_subprocess_exec(
                *command, env=env, stdout=subprocess.DEVNULL, stderr=log
            )
            try:
                yield _Worker(process, log)
            finally:
                if process.returncode is None:
                    process.terminate()
                    try:
                        await asyncio.wait_for(process.wait(), 15)
                    except TimeoutError:
                        process.kill()
                        await process.wait()

    async def close(self) -> None:
        async for key in self.redis.scan_iter(match=f"{self.prefix}:*", count=1000):
            await self.redis.unlink(key)
        await self.client.close()

    # The workloads.

    async def enqueue(self, n: int, batch: bool) -> float:
        """Tasks per second enqueued, one call at a time or in batches."""
        label = f"enqueue {'in batches' if batch else 'one at a time'}"
        step = self.progress.add_task(label, total=n)
        await self.client.enqueue("noop")  # connect and load the scripts first
        start = time.perf_counter()
        for done in range(0, n, BATCH):
            count = min(BATCH, n - done)
            if batch:
                await self.client.enqueue_many([NewTask("noop") for _ in range(count)])
            else:
                for _ in range(count):
                    await self.client.enqueue("noop")
            self.progress.advance(step, count)
        return n / (time.perf_counter() - start)

    async def process(self, task: str, n: int) -> float:
        """Tasks per second one worker process drains, its start-up left out."""
        counter = self.key(f"counter-{task}")
        ids = await self.fill(task, {"k": counter}, n)
        step = self.progress.add_task(f"process {task}", total=n)
        async with self.worker() as worker:
            first: tuple[float, int] | None = None
            last, since = n, time.monotonic()
            while (left := await self.pending()) > 0:
                worker.check()
                if first is None and left < n:
                    first = (time.perf_counter(), left)
                if left < last:
                    last, since = left, time.monotonic()
                elif time.monotonic() - since > STALL:
                    raise RuntimeError(f"process {task}: no progress for {STALL:g} s")
                self.progress.update(step, completed=n - left)
                await asyncio.sleep(POLL)
            self.progress.update(step, completed=n)
        t0, left0 = first or (time.perf_counter(), n)
        if task == "incr" and int(await self.redis.get(counter) or 0) != n:
            raise RuntimeError(f"incr: the counter is not {n}")
        busy = await self.busy_seconds(ids)
        if busy is not None:
            return n / max(busy, 0.001)  # timestamps are whole ms
        return left0 / max(time.perf_counter() - t0, 1e-9)

    async def latency(self, rate: int, seconds: float) -> dict[str, float]:
        """Enqueue-to-start percentiles (ms) at a steady rate, the worker idle before."""
        key = self.key("latency")
        async with self.worker() as worker:
            ready = self.key("ready")
            await self.client.enqueue("incr", {"k": ready})
            await _until(lambda: self.redis.exists(ready), worker.check)
            step = self.progress.add_task(f"latency at {rate:,}/s", total=seconds)
            sent, took = await self._steady(rate, seconds, key, step)

            async def recorded() -> bool:
                return int(await self.redis.llen(key)) >= sent

            await _until(recorded, worker.check)
        samples = sorted(float(v) * 1000 for v in await self.redis.lrange(key, 0, -1))
        return {"rate": rate, "achieved": sent / took, "samples": len(samples)} | {
            name: samples[max(0, math.ceil(q * len(samples)) - 1)]
            for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))
        }

    async def _steady(self, rate: int, seconds: float, key: str, step: TaskID) -> tuple[int, float]:
        """Task i is due at i / rate; when behind, what is due goes in one batch."""
        total, sent = round(rate * seconds), 0
        start = time.perf_counter()
        while sent < total:
            due = min(total, int((time.perf_counter() - start) * rate) + 1)
            payload = {"t": time.time(), "k": key}
            if due - sent == 1:
                await self.client.enqueue("stamp", payload)
            else:
                await self.client.enqueue_many(
                    [NewTask("stamp", payload) for _ in range(due - sent)]
                )
            sent = due
            self.progress.update(step, completed=time.perf_counter() - start)
            await asyncio.sleep(max(0.0, start + sent / rate - time.perf_counter()))
        return sent, time.perf_counter() - start


async def busy_seconds(client: Client, ids: list[str]) -> float | None:
    """From the first start to the last finish of these tasks of the client's default
    queue, by their own timestamps: a fast worker may drain a small run between two
    progress polls. None if none has finished."""
    starts, ends = [], []
    for i in range(0, len(ids), 5000):
        for task in await client.store.tasks.get_many(client.settings.queue, ids[i : i + 5000]):
            if task is not None and task.started_at and task.finished_at:
                starts.append(task.started_at)
                ends.append(task.finished_at)
    return (max(ends) - min(starts)).total_seconds() if starts else None


class _Worker:
    """The worker subprocess; its stderr goes to ``log``."""

    def __init__(self, process: asyncio.subprocess.Process, log: IO[bytes]) -> None:
        self.process, self.log = process, log

    def check(self) -> None:
        if self.process.returncode is not None:
            self.log.seek(0)
            tail = self.log.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"the worker exited with {self.process.returncode}: {tail}")


async def _until(
    condition: Callable[[], Awaitable[object]], check: Callable[[], None], timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        check()
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting after {timeout:g} s")
        await asyncio.sleep(POLL)


async def _benchmark(
    redis_url: str, tasks: int, rate: int, seconds: float, concurrency: int, progress: Progress
) -> dict[str, Any]:
    run = _Run(redis_url, concurrency, progress)
    try:
        info = await run.redis.info("server")
        return {
            "redis_version": str(info.get("redis_version", "?")),
            "tasks": tasks,
            "concurrency": concurrency,
            "enqueue_one_per_s": await run.enqueue(tasks, batch=False),
            "enqueue_batch_per_s": await run.enqueue(tasks, batch=True),
            "process_noop_per_s": await run.process("noop", tasks),
            "process_incr_per_s": await run.process("incr", tasks),
            "latency": await run.latency(rate, seconds),
        }
    finally:
        await run.close()


def run_benchmark(
    redis_url: str, tasks: int, rate: int, seconds: float, concurrency: int
) -> dict[str, Any]:
    """Run every workload against ``redis_url`` with progress bars; return the figures."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as progress:
        return asyncio.run(_benchmark(redis_url, tasks, rate, seconds, concurrency, progress))


def render(results: dict[str, Any]) -> Table:
    """The figures as a two-column table."""
    from rich.table import Table

    table = Table(title=f"arqd bench: {results['tasks']:,} tasks, concurrency "
                  f"{results['concurrency']}, Redis {results['redis_version']}")  # fmt: skip
    table.add_column("workload")
    table.add_column("result", justify="right")
    for label, key in (
        ("enqueue, one at a time", "enqueue_one_per_s"),
        (f"enqueue, batches of {BATCH:,}", "enqueue_batch_per_s"),
        ("process no-op tasks, one worker", "process_noop_per_s"),
        ("process INCR tasks, one worker", "process_incr_per_s"),
    ):
        table.add_row(label, f"{results[key]:,.0f} tasks/s")
    lat = results["latency"]
    table.add_row(
        f"enqueue-to-start at {lat['rate']:,}/s (p50 / p95 / p99 / max)",
        " / ".join(f"{lat[p]:.1f}" for p in ("p50", "p95", "p99", "max")) + " ms",
    )
    return table
