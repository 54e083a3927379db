"""One system's workloads in the side-by-side comparison, on the bench's private Redis.

The producer side runs in the system's own environment (its driver prints one JSON line);
the worker is its own CLI, one process, started here so its memory and CPU can be read.
Every system runs the same job: one INCR on ``bench:counter`` (or, for latency, one RPUSH
of its enqueue-to-start time); completion is counted by that counter for all. The Redis
is flushed between workloads: it is the bench's own server, never a shared one.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from rich.progress import Progress

from bench.peers.install import installed, venv
from bench.procs import REPO, WorkerProcess, as_deployed, until, worker_process
from bench.systems.spec import Peer, Setting

COUNTER = "bench:counter"
READY = "bench:ready"
QUEUE = "bench"
POLL = 0.01
STALL = 30.0  # seconds without progress (start-up included) before a run is given up


@dataclass(frozen=True)
class Limits:
    tasks: int = 20_000
    rates: tuple[int, ...] = (500, 5_000)
    seconds: float = 10.0  # latency: seconds per rate
    max_seconds: float = 10.0  # processing: at most this long per run, then the rate so far
    drain: float = 10.0  # latency: wait at most this long for late tasks to start


@dataclass
class Latency:
    rate: int
    achieved: float
    sent: int
    started: int  # tasks that started before the wait ended
    p50: float  # ms; math.inf: that share of tasks had not started when the wait ended
    p95: float
    p99: float
    max: float


@dataclass
class Processing:
    rate: float  # tasks/s, start-up left out
    tasks: int  # tasks counted for the rate
    seconds: float
    cpu_us: float  # worker CPU per task (process tree)
    peak_rss: int  # bytes, the largest process in the worker's tree
    processes: int


@dataclass
class SystemRun:
    """Every figure of one system in one run; ``errors``: workload → why it has none."""

    system: str
    load: float = 0.0  # 1-minute load average when the run started (the machine is shared)
    enqueue_one: float | None = None
    enqueue_batch: float | None = None
    bytes_per_task: float | None = None
    default: Processing | None = None
    tuned: Processing | None = None
    noop: Processing | None = None  # arqd alone: a true no-op task, tuned worker
    incr_plain: Processing | None = None  # arqd alone: the INCR job without PipelinedRedis
    latency: list[Latency] = field(default_factory=list)
    latency_rss: int | None = None
    errors: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each step


def reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


class SideBySide:
    """Runs the workloads of one ``Peer``."""

    def __init__(
        self, peer: Peer, redis_url: str, r: aioredis.Redis, limits: Limits, progress: Progress
    ) -> None:
        self.peer, self.url, self.redis = peer, redis_url, r
        self.limits, self.progress = limits, progress

    def _fill(self, template: tuple[str, ...], concurrency: int = 1) -> list[str]:
        bin_dir = venv(self.peer)
        values = {"python": str(bin_dir / "python"), "bin": str(bin_dir), "url": self.url,
                  "queue": QUEUE, "concurrency": str(concurrency)}  # fmt: skip
        return [part.format(**values) for part in template]

    def _env(self, concurrency: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ARQD_", "VIRTUAL_ENV"))}
        env.update(
            BENCH_REDIS_URL=self.url, BENCH_QUEUE=QUEUE, BENCH_CONCURRENCY=str(concurrency),
            REDIS_URL=self.url, ARQD_CONCURRENCY=str(concurrency), ARQD_LOG_LEVEL="WARNING",
            METRICS_PORT="0", PYTHONPATH=str(REPO),
        )  # fmt: skip
        env["PATH"] = f"{venv(self.peer)}{os.pathsep}{env.get('PATH', '')}"
        return as_deployed(env)

    async def driver(self, *args: str) -> dict[str, Any]:
        """Run the driver in the system's environment; its last output line is JSON."""
        process = await asyncio.create_subprocess_exec(
            *self._fill(self.peer.driver), *args, cwd=REPO, env=self._env(1),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await process.communicate()
        if process.returncode == -signal.SIGINT:  # Ctrl-C reached the driver: stop it all
            raise KeyboardInterrupt
        if process.returncode != 0:
            lines = err.decode(errors="replace").strip().splitlines() or ["no output"]
            raise RuntimeError(f"driver {args[0]}: {lines[-1]}")
        result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        return result

    # The run.

    async def run(self) -> SystemRun:
        out = SystemRun(self.peer.name, os.getloadavg()[0])
        if not installed(self.peer):
            out.errors["all"] = "not installed (python -m bench.peers install)"
            return out
        n = str(self.limits.tasks)
        await self._step(out, "enqueue_one", self._enqueue_one)
        default = self.peer.default
        await self._step(
            out, "default", lambda o: self.process(o, "default", default), "enqueue_one"
        )
        if self.peer.batch:
            await self._step(out, "enqueue_batch", self._enqueue_batch)
        else:  # the tasks the tuned worker drains, enqueued one at a time, untimed
            await self._step(out, "fill", lambda _: self.driver("enqueue", "--tasks", n))
        fill = "enqueue_batch" if self.peer.batch else "fill"
        await self._step(out, "tuned", lambda o: self.process(o, "tuned", self.peer.tuned), fill)
        await self._step(out, "latency", self._latency)
        return out

    async def _step(
        self,
        out: SystemRun,
        name: str,
        work: Callable[[SystemRun], Awaitable[object]],
        needs: str | None = None,
    ) -> None:
        if needs and needs in out.errors:
            out.errors[name] = f"no tasks to process ({needs} failed)"
            await self.redis.flushall()
            return
        step = self.progress.add_task(f"{self.peer.name}: {name}", total=None)
        start = time.monotonic()
        try:
            await work(out)
        except Exception as exc:
            out.errors[name] = reason(exc)
        finally:
            out.seconds[name] = round(time.monotonic() - start, 2)
            self.progress.remove_task(step)

    async def _enqueue_one(self, out: SystemRun) -> None:
        await self.redis.flushall()
        result = await self.driver("enqueue", "--tasks", str(self.limits.tasks))
        out.enqueue_one = result["tasks"] / result["seconds"]
        out.bytes_per_task = result["bytes_per_task"]

    async def _enqueue_batch(self, out: SystemRun) -> None:
        await self.redis.flushall()
        result = await self.driver("enqueue", "--tasks", str(self.limits.tasks), "--mode", "batch")
        out.enqueue_batch = result["tasks"] / result["seconds"]

    async def process(self, out: SystemRun, which: str, setting: Setting) -> None:
        try:
            command = self._fill(setting.command, setting.concurrency)
            with worker_process(command, self._env(setting.concurrency), graceful=False) as worker:
                figures = await self._drain(worker, self.limits.tasks, COUNTER)
        finally:
            await self.redis.flushall()
        setattr(out, which, figures)

    async def _drain(self, worker: WorkerProcess, n: int, key: str) -> Processing:
        """Poll the counter until ``n`` (or ``max_seconds`` after the first task), from the
        first poll that saw progress, so the worker's start-up is left out."""
        first: tuple[float, int, float] | None = None
        last, since = -1, time.monotonic()
        while True:
            done, now = int(await self.redis.get(key) or 0), time.perf_counter()
            worker.check()
            if first is None and done > 0:
                first = (now, done, worker.cpu_seconds())
            if done != last:
                last, since = done, time.monotonic()
            elif time.monotonic() - since > STALL:
                raise RuntimeError(f"no progress for {STALL:g} s ({done:,} of {n:,} done)")
            if done >= n or (first and now - first[0] >= self.limits.max_seconds):
                break
            await asyncio.sleep(POLL)
        t0, done0, cpu0 = first or (now, 0, 0.0)
        counted, seconds = done - done0, now - t0
        if counted <= 0 or seconds <= 0:
            raise RuntimeError("finished between two polls: too few tasks to time")
        cpu = (worker.cpu_seconds() - cpu0) / counted * 1e6
        return Processing(counted / seconds, counted, seconds, cpu, worker.peak_rss(),
                          worker.processes())  # fmt: skip

    async def _latency(self, out: SystemRun) -> None:
        """Each rate from a fresh start: empty Redis, an idle worker, so the tasks a system
        could not start at one rate do not delay those of the next."""
        setting = self.peer.tuned
        command = self._fill(setting.command, setting.concurrency)
        for rate in self.limits.rates:
            await self.redis.flushall()
            try:
                with worker_process(command, self._env(setting.concurrency), graceful=False) as w:
                    await self.driver("enqueue", "--tasks", "1", "--key", READY)
                    await until(lambda: self.redis.get(READY), w.check, 60)
                    out.latency.append(await self._latency_at(w, rate))
                    out.latency_rss = max(out.latency_rss or 0, w.peak_rss())
            finally:
                await self.redis.flushall()

    async def _latency_at(self, worker: WorkerProcess, rate: int) -> Latency:
        key = f"bench:latency:{rate}"
        args = ("produce", "--rate", str(rate), "--seconds", str(self.limits.seconds))
        result = await self.driver(*args, "--key", key)
        sent = int(result["sent"])
        deadline = time.monotonic() + self.limits.drain
        while int(await self.redis.llen(key)) < sent and time.monotonic() < deadline:
            worker.check()
            await asyncio.sleep(0.05)
        samples = [float(v) * 1000 for v in await self.redis.lrange(key, 0, -1)]
        await self.redis.delete(key)
        return summarize(rate, sent / result["seconds"], sent, samples)


def summarize(rate: int, achieved: float, sent: int, samples_ms: list[float]) -> Latency:
    """Nearest-rank percentiles over every task sent: those that had not started when the
    wait ended count as infinitely late, so a percentile is never flattered by them."""
    ms = sorted(samples_ms) + [math.inf] * max(0, sent - len(samples_ms))
    if not ms:
        raise RuntimeError("no latency samples")
    p50, p95, p99 = (ms[max(0, math.ceil(q * len(ms)) - 1)] for q in (0.50, 0.95, 0.99))
    return Latency(rate, achieved, sent, len(samples_ms), p50, p95, p99, ms[-1])
