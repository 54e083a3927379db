"""Benchmark of arqd's core engine: enqueue rates, processing rate, latency, memory, RSS.

    .venv/bin/python -m bench.core [--tasks 20000] [--rate 500] [--seconds 10]
                                   [--redis-url URL] [--out bench/results/core.md]

Without ``--redis-url`` the bench starts a private redis-server (no persistence) on a free
port. Each measurement talks to the queue system through the ``System`` protocol, in a
namespace (key prefix) of its own, with real worker processes. A peer (SAQ, arq, taskiq,
Dramatiq, Huey, RQ, Celery, BullMQ) is added as one ``System`` class in ``SYSTEMS`` plus a
task module declaring ``noop``, ``incr`` and ``stamp`` the way ``bench/tasks.py`` does.

Latency is also measured for bare redis-py RPUSH → BLPOP between two processes: the floor
this machine and client library allow, to read the queue's own numbers against.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

import psutil
import redis
import redis.asyncio as aioredis
from rich.console import Console
from rich.progress import Progress, TaskID

from arqd.client import Client
from arqd.core.settings import Settings
from arqd.store.codec import NewTask
from arqd.store.connection import connect
from arqd.store.store import Store

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent
POLL = 0.02  # seconds between progress polls
WARMUP = 0.5  # seconds of latency traffic sent, and discarded, before measuring
STALL = 20.0  # seconds without progress (start-up included) before a run is given up
Payload = dict[str, Any]


class Producer(Protocol):
    async def enqueue_one(self, task: str, payload: Payload) -> None: ...

    async def enqueue_batch(self, task: str, payloads: Sequence[Payload]) -> None: ...


class System(Producer, Protocol):
    """One queue system in a namespace of its own on the bench's Redis."""

    name: str

    def worker(self, concurrency: int, quiet: bool = True) -> tuple[list[str], dict[str, str]]:
        """The command and environment of one worker process serving this namespace;
        ``quiet``: no log line per task (the bench's standard), else the system's defaults."""
        ...

    async def worker_ready(self) -> bool: ...

    async def pending(self) -> int:
        """Tasks enqueued and not finished yet."""
        ...

    async def failed(self) -> int: ...

    async def busy_seconds(self) -> float | None:
        """First start to last finish of the tasks enqueued here; None: use the wall clock."""
        ...

    async def memory_breakdown(self) -> dict[str, float]:
        """Bytes of each structure per queued task, as far as the system can tell."""
        ...

    def scratch_key(self, name: str) -> str:
        """A key in this namespace for the bench's own data (counters, latency samples)."""
        ...

    async def close(self) -> None:
        """Delete everything in the namespace and disconnect."""
        ...


class ArqdSystem:
    """arqd through its public async Client; workers run ``arqd worker bench.tasks``."""

    name = "arqd"

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        # As short as the default "arqd", so keys cost what they cost in production.
        self.prefix = f"b{uuid.uuid4().hex[:5]}"
        self.settings = Settings(redis_url=redis_url, key_prefix=self.prefix)
        self.client = Client(Store(connect(redis_url), self.settings))
        self.redis = self.client.store.redis
        self._ids: list[str] = []

    async def enqueue_one(self, task: str, payload: Payload) -> None:
        self._ids.append((await self.client.enqueue(task, payload)).id)

    async def enqueue_batch(self, task: str, payloads: Sequence[Payload]) -> None:
        tasks = await self.client.enqueue_many([NewTask(task, p) for p in payloads])
        self._ids.extend(t.id for t in tasks)

    def worker(self, concurrency: int, quiet: bool = True) -> tuple[list[str], dict[str, str]]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARQD_")}
        if quiet:
            env["ARQD_LOG_LEVEL"] = "WARNING"  # the default, INFO, logs every task
        env.update(
            REDIS_URL=self.redis_url,
            ARQD_KEY_PREFIX=self.prefix,
            ARQD_CONCURRENCY=str(concurrency),
            METRICS_PORT="0",  # metrics stay on, as by default, on a free port
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        )
        return [_arqd_command(), "worker", "bench.tasks"], env

    async def worker_ready(self) -> bool:
        return bool(await self.client.workers())

    async def pending(self) -> int:
        s = (await self.client.stats(self.settings.queue))[0]
        return s.queued + s.scheduled + s.active

    async def failed(self) -> int:
        return (await self.client.stats(self.settings.queue))[0].failed

    async def busy_seconds(self) -> float | None:
        """From the tasks' own start and finish times (ms, Redis clock)."""
        keys, queue = self.client.store.keys, self.settings.queue
        first, last = math.inf, 0.0
        for i in range(0, len(self._ids), 5000):
            pipe = self.redis.pipeline(transaction=False)
            for task_id in self._ids[i : i + 5000]:
                pipe.hmget(keys.task(queue, task_id), "stime", "ftime")
            for stime, ftime in await pipe.execute():
                if stime and ftime:
                    first, last = min(first, float(stime)), max(last, float(ftime))
        return (last - first) / 1000 if last else None

    async def memory_breakdown(self) -> dict[str, float]:
        keys, queue, r = self.client.store.keys, self.settings.queue, self.redis
        task, ready = keys.task(queue, self._ids[-1]), keys.ready(queue, 0)
        events = keys.events(queue)
        sizes = [float(await r.memory_usage(k, samples=0) or 0) for k in (task, ready, events)]
        ready_len, events_len = int(await r.llen(ready)), int(await r.xlen(events))
        return {
            "task hash (one task, key included)": sizes[0],
            "ready list, per task": sizes[1] / max(1, ready_len),
            f"events stream, per entry ({events_len:,} entries)": sizes[2] / max(1, events_len),
        }

    def scratch_key(self, name: str) -> str:
        return f"{self.prefix}:bench:{name}"

    async def close(self) -> None:
        batch: list[bytes] = []
        async for key in self.redis.scan_iter(match=f"{self.prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                await self.redis.unlink(*batch)
                batch = []
        if batch:
            await self.redis.unlink(*batch)
        await self.client.close()


SYSTEMS: dict[str, Callable[[str], System]] = {"arqd": ArqdSystem}


def _arqd_command() -> str:
    beside = Path(sys.executable).with_name("arqd")
    found = str(beside) if beside.exists() else shutil.which("arqd")
    if not found:
        raise RuntimeError("the arqd command is not installed (run `uv sync`)")
    return found


# Processes: a private Redis, and the worker processes we watch.


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """A redis-server of our own on a free port, no persistence; yields its URL."""
    binary = shutil.which("redis-server")
    if not binary:
        raise RuntimeError("redis-server is not on the PATH; pass --redis-url")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with tempfile.TemporaryDirectory(prefix="arqd-bench-") as folder:
        process = subprocess.Popen([binary, *args, "--dir", folder], stdout=subprocess.DEVNULL)
        try:
            _await_ping(port, process)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(10)


def _await_ping(port: int, process: subprocess.Popen[bytes]) -> None:
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    try:
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
    finally:
        client.close()


class WorkerProcess:
    """A running worker process of the system under test; its output goes to ``log``."""

    def __init__(self, process: subprocess.Popen[bytes], log: IO[bytes]) -> None:
        self.process = process
        self.ps = psutil.Process(process.pid)
        self._log = log

    def check(self) -> None:
        """Raise, with the worker's output, if it has exited."""
        if self.process.poll() is not None:
            self._log.seek(0)
            tail = self._log.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"worker exited with {self.process.returncode}:\n{tail}")

    def cpu_seconds(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def peak_rss(self) -> int:
        """Peak resident set size in bytes (VmHWM); the current RSS where /proc is missing."""
        status = Path(f"/proc/{self.process.pid}/status")
        if status.exists():
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return int(self.ps.memory_info().rss)


@contextlib.contextmanager
def worker_process(command: list[str], env: dict[str, str]) -> Iterator[WorkerProcess]:
    """Start a worker; at exit, SIGTERM it (SIGKILL after 15 s) and wait."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield WorkerProcess(process, log)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


# Results.


@dataclass(frozen=True)
class Options:
    tasks: int = 20_000
    rates: tuple[int, ...] = (500, 5_000)
    seconds: float = 10.0
    concurrency: tuple[int, ...] = (50, 200)
    runs: int = 3
    callers: int = 50
    batch: int = 1_000
    baseline_seconds: float = 5.0
    default_logging: bool = True  # one more no-op run with the worker's default logging


@dataclass(frozen=True)
class EnqueueResult:
    mode: str
    tasks: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds


@dataclass(frozen=True)
class Run:
    """One processing run."""

    rate: float  # tasks/s
    worker_cpu_us: float  # worker CPU per task, microseconds
    redis_cpu_us: float  # redis-server CPU per task, microseconds
    peak_rss: int  # bytes


@dataclass(frozen=True)
class ProcessingResult:
    workload: str
    concurrency: int
    quiet: bool  # no log line per task
    tasks: int
    runs: list[Run]

    @property
    def median(self) -> Run:
        return sorted(self.runs, key=lambda run: run.rate)[len(self.runs) // 2]

    @property
    def rate(self) -> float:
        return statistics.median(run.rate for run in self.runs)

    @property
    def peak_rss(self) -> int:
        return max(run.peak_rss for run in self.runs)


@dataclass(frozen=True)
class LatencyResult:
    label: str
    rate: int
    achieved: float
    tasks: int
    p50: float  # milliseconds
    p95: float
    p99: float
    max: float


@dataclass(frozen=True)
class MemoryResult:
    tasks: int
    bytes_per_task: float
    breakdown: dict[str, float]


@dataclass
class Results:
    system: str
    options: Options
    machine: dict[str, str]
    enqueue: list[EnqueueResult] = field(default_factory=list)
    processing: list[ProcessingResult] = field(default_factory=list)
    latency: list[LatencyResult] = field(default_factory=list)
    memory: MemoryResult | None = None


# Measurements.


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
        """Enqueue no-op tasks one at a time, from concurrent callers, and in batches."""
        n, callers, batch = self.options.tasks, self.options.callers, self.options.batch
        modes = [
            ("one at a time", 1, 1),
            (f"one at a time, {callers} concurrent callers", callers, 1),
            (f"batches of {batch:,}", 1, batch),
        ]
        return [
            EnqueueResult(mode, n, await self._in_namespace(self._enqueue_timed(mode, c, b)))
            for mode, c, b in modes
        ]

    def _enqueue_timed(
        self, mode: str, callers: int, batch: int
    ) -> Callable[[System], Awaitable[float]]:
        n = self.options.tasks

        async def caller(system: System, step: TaskID, count: int) -> None:
            for i in range(count):
                await system.enqueue_one("noop", {})
                if i % 500 == 499:
                    self.progress.advance(step, 500)

        async def timed(system: System) -> float:
            await system.enqueue_one("noop", {})  # connect and load the scripts first
            step = self.progress.add_task(f"enqueue {mode}", total=n)
            start = time.perf_counter()
            if batch > 1:
                await self._fill(system, "noop", {}, n)
            else:
                shares = [n // callers + (i < n % callers) for i in range(callers)]
                await asyncio.gather(*(caller(system, step, share) for share in shares))
            seconds = time.perf_counter() - start
            self.progress.remove_task(step)
            return seconds

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
        await self._fill(system, workload, {"k": counter} if workload == "incr" else {}, n)
        step = self.progress.add_task(f"{workload}, concurrency {concurrency}", total=n)
        try:
            with worker_process(*system.worker(concurrency, quiet)) as worker:
                wall, done, worker_cpu, redis_cpu = await self._drain(system, worker, step)
                rss = worker.peak_rss()
        finally:
            self.progress.remove_task(step)
        if failed := await system.failed():
            raise RuntimeError(f"{workload}: {failed} tasks failed")
        if workload == "incr" and int(await self.redis.get(counter) or 0) != n:
            raise RuntimeError(f"incr: the counter is not {n}")
        busy = await system.busy_seconds() or wall
        return Run(n / busy, worker_cpu / done * 1e6, redis_cpu / done * 1e6, rss)

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
                first = (time.perf_counter(), left, worker.cpu_seconds(), await self._redis_cpu())
            if left < last_left:
                last_left, stalled_since = left, time.monotonic()
            elif time.monotonic() - stalled_since > STALL:
                failed = await system.failed()
                raise RuntimeError(f"no progress for {STALL:g} s: {left} pending, {failed} failed")
            self.progress.update(step, completed=n - left)
            await asyncio.sleep(POLL)
        now, worker_cpu, redis_cpu = (
            time.perf_counter(),
            worker.cpu_seconds(),
            await self._redis_cpu(),
        )
        t0, left0, w0, r0 = first or (now, n, worker_cpu, redis_cpu)
        return now - t0, max(1, left0), worker_cpu - w0, redis_cpu - r0

    async def _redis_cpu(self) -> float:
        info = await self.redis.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    # Latency.

    async def latency(self, concurrency: int) -> list[LatencyResult]:
        """Enqueue-to-start latency at each steady rate, one worker process running idle."""

        async def run(system: System) -> list[LatencyResult]:
            label = f"{system.name}, concurrency {concurrency}"
            with worker_process(*system.worker(concurrency)) as worker:
                await _until(system.worker_ready, worker.check, 30)
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

        await _until(recorded, worker.check, 30 + sent / 500)
        return _summary(label, rate, sent / took, await self.redis.lrange(key, 0, -1))

    async def baseline_latency(self) -> LatencyResult:
        """Bare redis-py RPUSH → BLPOP at the first rate, into a second process."""
        rate, seconds = self.options.rates[0], self.options.baseline_seconds
        key = f"bench-baseline-{uuid.uuid4().hex[:8]}"
        raw = _RawList(self.redis, f"{key}:q")
        command = [sys.executable, "-c", BLPOP_CONSUMER, self.redis_url, key]
        with worker_process(command, dict(os.environ)) as consumer:
            await _until(lambda: self.redis.exists(f"{key}:ready"), consumer.check, 30)
            with self._ticking(f"baseline at {rate:,}/s", seconds) as tick:
                sent, took = await _produce(raw, "", rate, seconds, "", tick)
            await raw.enqueue_one("", {"flush": True})
            await _until(lambda: _exited(consumer), consumer.check, 30)
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


async def _until(
    condition: Callable[[], Awaitable[object]], check: Callable[[], None], timeout: float
) -> None:
    """Poll ``condition`` until it is true; ``check`` raises if what we wait on has died."""
    deadline = time.monotonic() + timeout
    while not await condition():
        check()
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting after {timeout:g} s")
        await asyncio.sleep(POLL)


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
        if options.default_logging:
            first = options.concurrency[0]
            results.processing.append(await bench.processing("noop", first, False, runs=1))
        results.latency = await bench.latency(options.concurrency[0])
        if options.baseline_seconds > 0:
            results.latency.append(await bench.baseline_latency())
        results.machine["load average at end"] = _load()
        return results
    finally:
        await r.aclose()


# The report.


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)"


def machine_info(redis_version: str) -> dict[str, str]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    git = ["git", "rev-parse", "--short", "HEAD"]
    commit = subprocess.run(git, cwd=REPO, capture_output=True, text=True).stdout.strip()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "arqd commit": commit or "unknown",
        "CPU": f"{cpu}, {psutil.cpu_count(logical=False)} cores, {os.cpu_count()} threads",
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "OS": platform.platform(),
        "Python": f"{platform.python_implementation()} {platform.python_version()}, "
        f"redis-py {redis.__version__}",
        "Redis": f"redis-server {redis_version}, no persistence, on the same machine",
        "load average at start": _load(),
    }


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


Check = tuple[str, float, str, float | None, float]  # metric, value, unit, floor, target


def checks(r: Results) -> list[Check]:
    """Each figure against this issue's floor and the peer comparison's target."""

    def best(workload: str, quiet: bool = True) -> float:
        rates = [p.rate for p in r.processing if (p.workload, p.quiet) == (workload, quiet)]
        return max(rates, default=0.0)

    rows: list[Check] = [
        ("no-op tasks processed, one worker", best("noop"), "tasks/s", 5_000, 25_000),
        ("INCR tasks processed, one worker", best("incr"), "tasks/s", None, 10_000),
    ]
    if any(not p.quiet for p in r.processing):
        metric = "no-op tasks processed, default logging"
        rows.append((metric, best("noop", quiet=False), "tasks/s", 5_000, 25_000))
    if r.enqueue:
        rows.append(("enqueue one at a time", r.enqueue[0].rate, "tasks/s", None, 10_000))
        rows.append(("enqueue in batches", r.enqueue[-1].rate, "tasks/s", None, 100_000))
    for x in r.latency:
        if x.label.startswith(r.system) and x.rate in (500, 5_000):
            floor, target = (5.0, 1.0) if x.rate == 500 else (None, 10.0)
            rows.append((f"p99 enqueue-to-start at {x.rate:,}/s", x.p99, "ms", floor, target))
    if r.memory:
        rows.append(("Redis per queued task", r.memory.bytes_per_task, "B", 1024, 200))
    if r.processing:
        rss = max(p.peak_rss for p in r.processing) / 2**20
        rows.append(("worker peak RSS", rss, "MB", None, 60))
    return rows


def _verdict(value: float, unit: str, limit: float | None) -> str:
    if limit is None:
        return "-"
    at_most = unit in ("ms", "B", "MB")
    ok = value <= limit if at_most else value >= limit
    return f"{'≤' if at_most else '≥'} {limit:,g} {'✅' if ok else '❌'}"


def render(r: Results) -> str:
    """The results as a markdown document."""
    o = r.options
    params = (
        f"{o.tasks:,} tasks per enqueue and processing run; processing: median of {o.runs} "
        f"runs; latency: {o.seconds:g} s per rate after {WARMUP:g} s of warm-up"
    )
    lines = [f"# {r.system} core engine benchmark", ""]
    lines += _table(["", ""], [*r.machine.items(), ("parameters", params)])
    lines += ["## Against the targets", ""]
    lines += _table(
        ["metric", "measured", "floor (this issue)", "target (peer comparison)"],
        [
            (m, f"{v:,.{1 if u in ('ms', 'MB') else 0}f} {u}", _verdict(v, u, f), _verdict(v, u, t))
            for m, v, u, f, t in checks(r)
        ],
    )
    lines += ["## Enqueue (no-op tasks, payload `{}`, async Client)", ""]
    lines += _table(
        ["mode", "tasks", "seconds", "tasks/s"],
        [(e.mode, f"{e.tasks:,}", f"{e.seconds:.2f}", f"{e.rate:,.0f}") for e in r.enqueue],
    )
    lines += _processing(r.processing)
    lines += ["## Enqueue-to-start latency (worker idle before, steady producer)", ""]
    lines += _table(
        ["what", "rate", "achieved", "samples", "p50 ms", "p95 ms", "p99 ms", "max ms"],
        [
            (x.label, f"{x.rate:,}/s", f"{x.achieved:,.0f}/s", f"{x.tasks:,}", f"{x.p50:.2f}",
             f"{x.p95:.2f}", f"{x.p99:.2f}", f"{x.max:.2f}")
            for x in r.latency
        ],
    )  # fmt: skip
    if r.memory:
        m = r.memory
        lines += [f"## Redis memory ({m.tasks:,} queued no-op tasks, no worker)", ""]
        rows = [("used_memory growth per task", f"{m.bytes_per_task:,.0f}")]
        rows += [(k, f"{v:,.0f}") for k, v in m.breakdown.items()]
        lines += _table(["measure", "bytes"], rows)
    return "\n".join(lines)


def _processing(results: Sequence[ProcessingResult]) -> list[str]:
    lines = ["## Processing (one worker process; all tasks queued before it starts)", ""]
    lines += _table(
        ["workload", "concurrency", "log per task", "tasks/s (median)", "runs",
         "worker CPU µs/task", "Redis CPU µs/task", "worker peak RSS"],
        [
            (p.workload, p.concurrency, "off" if p.quiet else "on (default)", f"{p.rate:,.0f}",
             " / ".join(f"{run.rate:,.0f}" for run in p.runs), f"{p.median.worker_cpu_us:,.0f}",
             f"{p.median.redis_cpu_us:,.0f}", f"{p.peak_rss / 2**20:.1f} MB")
            for p in results
        ],
    )  # fmt: skip
    note = (
        "tasks/s = tasks / (last finish − first start), from the tasks' own timestamps; "
        "CPU per task is of the median run, the worker's start-up left out. "
        "The bench runs workers with ARQD_LOG_LEVEL=WARNING but for the row marked default."
    )
    return [*lines, note, ""]


# The command.


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
