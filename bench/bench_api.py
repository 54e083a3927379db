"""Benchmark of the HTTP API: single-task POST /tasks and the batch form, over keep-alive.

    .venv/bin/python -m bench.bench_api [--seconds 10] [--repeat 3] [--connections 32]
                                        [--batch-size 1000] [--batch-connections 8]
                                        [--out bench/results/api.md]

Starts a private redis-server (no persistence) and ``arqd serve --no-worker`` with an API key
against it, as a separate process, then drives it from this process with raw HTTP/1.1 on
keep-alive connections (one request in flight per connection). Reports requests or tasks
per second, the latency percentiles seen by the client, and the CPU time the arqd process
spent per task (which other programs on the machine change less than the throughput).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import httpx
import orjson
import psutil
import redis

from arqd.store.embedded import find_server_binary

REPO = Path(__file__).resolve().parent.parent
API_KEY = "bench-key"
TASK = {"type": "echo", "payload": {"order": 12345, "items": ["a", "b", "c"]}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def private_redis() -> Iterator[str]:
    """A redis-server of our own on a free port, no persistence; yields its URL."""
    binary = shutil.which("redis-server") or str(find_server_binary())
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        process = subprocess.Popen([binary, *args, "--dir", folder], stdout=subprocess.DEVNULL)
        try:
            client = redis.Redis(port=port)
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    assert time.monotonic() < deadline, "redis-server did not start"
                    time.sleep(0.02)
            client.close()
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(10)


@contextmanager
def arqd_serve(redis_url: str, per_minute: int) -> Iterator[tuple[int, psutil.Process]]:
    """``arqd serve --no-worker`` on a free port with ``REQUESTS_PER_MINUTE=per_minute``
    (0: the rate limit off); yields the port and the process."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ARQD_")},
        "REDIS_URL": redis_url,
        "API_KEYS": API_KEY,
        "ARQD_LOG_LEVEL": "warning",
        "REQUESTS_PER_MINUTE": str(per_minute),
    }
    arqd = Path(sys.executable).parent / "arqd"
    command = [str(arqd), "serve", "--no-worker", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, "arqd serve exited"
            assert time.monotonic() < deadline, "arqd serve did not come up"
            time.sleep(0.1)
        yield port, psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait(30)


def post_request(port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class KeepAliveClient(asyncio.Protocol):
    """One keep-alive connection sending ``request`` again as soon as each answer is in.

    A bare protocol rather than streams: the load generator shares the machine with the
    server, and every microsecond it spends is one the server does not get."""

    def __init__(self, request: bytes, stop_at: float, done: asyncio.Future[None]) -> None:
        self.request = request
        self.stop_at = stop_at
        self.done = done
        self.latencies: list[float] = []
        self.errors = 0
        self.buffer = b""
        self.sent = 0.0
        self.transport: asyncio.WriteTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.WriteTransport, transport)  # uvloop's is not a subclass
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.sent = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].lower()
        start = head.index(b"content-length:") + 15
        stop = head.find(b"\r\n", start)
        length = int(head[start : stop if stop >= 0 else len(head)])
        if len(self.buffer) < end + 4 + length:
            return
        now = time.perf_counter()
        self.latencies.append(now - self.sent)
        self.errors += int(head[9:12]) >= 300
        self.buffer = self.buffer[end + 4 + length :]
        if now < self.stop_at:
            self._send()
        elif not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


@dataclass
class Run:
    """What one load run measured."""

    name: str
    requests: int
    items_per_request: int
    seconds: float
    latencies: list[float]
    errors: int
    server_cpu: float = 0.0  # CPU seconds the arqd process used during the run

    @property
    def per_second(self) -> float:
        return self.requests * self.items_per_request / self.seconds

    @property
    def cpu_per_item(self) -> float:
        """Server CPU microseconds per task: what one free core would need."""
        return self.server_cpu / (self.requests * self.items_per_request) * 1e6

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000


def _same(client: KeepAliveClient) -> KeepAliveClient:
    return client


async def drive(port: int, request: bytes, connections: int, seconds: float) -> Run:
    """Send ``request`` over ``connections`` keep-alive connections for ``seconds``."""
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    clients = []
    for _ in range(connections):
        done: asyncio.Future[None] = loop.create_future()
        client = KeepAliveClient(request, started + seconds, done)
        transport, _ = await loop.create_connection(
            functools.partial(_same, client), "127.0.0.1", port
        )
        clients.append((client, transport, done))
    await asyncio.gather(*(done for _, _, done in clients))
    elapsed = time.perf_counter() - started
    for _, transport, _ in clients:
        transport.close()
    latencies = [latency for client, _, _ in clients for latency in client.latencies]
    errors = sum(client.errors for client, _, _ in clients)
    return Run("", len(latencies), 1, elapsed, latencies, errors)


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def measure(args: argparse.Namespace, port: int, server: psutil.Process) -> list[Run]:
    single = post_request(port, "/tasks", orjson.dumps(TASK))
    batch_body = orjson.dumps({"tasks": [TASK] * args.batch_size})
    batch = post_request(port, "/tasks/batch", batch_body)
    plans = [
        (f"POST /tasks, {args.connections} connections", single, args.connections, 1),
        (
            f"POST /tasks/batch ({args.batch_size} tasks), {args.batch_connections} connections",
            batch,
            args.batch_connections,
            args.batch_size,
        ),
    ]
    runs = []
    for name, request, connections, items in plans:
        await drive(port, request, connections, 2.0)  # warm up
        for _ in range(args.repeat):
            before = cpu_seconds(server)
            run = await drive(port, request, connections, args.seconds)
            run.server_cpu = cpu_seconds(server) - before
            run.name, run.items_per_request = name, items
            runs.append(run)
    return runs


def report(runs: list[Run], args: argparse.Namespace) -> str:
    lines = [
        "# HTTP API benchmark",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs "
        f"({platform.processor() or platform.machine()}), Python {platform.python_version()}; "
        "one `arqd serve --no-worker` process (uvicorn, uvloop, httptools) with an API key, "
        "a private redis-server 7, and the load generator, all on this machine.",
        "",
        f"Command: `.venv/bin/python -m bench.bench_api --seconds {args.seconds:g} "
        f"--repeat {args.repeat} --connections {args.connections} "
        f"--batch-size {args.batch_size} --batch-connections {args.batch_connections} "
        f"--requests-per-minute {args.requests_per_minute}`",
        "",
        "HTTP rate limit: "
        + (
            f"on, {args.requests_per_minute:,} requests per minute for the bench's key "
            "(one Redis script call per request; never reached)."
            if args.requests_per_minute
            else "off (`REQUESTS_PER_MINUTE=0`)."
        ),
        "",
        f"Load average when it started: {os.getloadavg()[0]:.2f}. Other programs on the "
        "machine compete for the same two cores: throughput drops with them, and the arqd "
        "CPU time per task rises less (they still share caches), so it shows what one free "
        "core would do.",
        "",
        "| run | requests | tasks/s | p50 ms | p99 ms | errors | arqd CPU µs/task "
        "| tasks/s per free core |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        lines.append(
            f"| {run.name} | {run.requests} | {run.per_second:,.0f} | "
            f"{run.percentile(0.50):.2f} | {run.percentile(0.99):.2f} | {run.errors} | "
            f"{run.cpu_per_item:.1f} | {1e6 / run.cpu_per_item:,.0f} |"
        )
    task_bytes = len(orjson.dumps(TASK))
    lines += ["", f"Each task: `{orjson.dumps(TASK).decode()}` ({task_bytes} bytes).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--batch-connections", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each kind")
    parser.add_argument(
        "--requests-per-minute",
        type=int,
        default=0,
        help="the API's REQUESTS_PER_MINUTE; 0 (the default) turns the rate limit off",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "api.md")
    args = parser.parse_args()
    with private_redis() as url, arqd_serve(url, args.requests_per_minute) as (port, server):
        try:
            import uvloop

            runs = uvloop.run(measure(args, port, server))
        except ImportError:
            runs = asyncio.run(measure(args, port, server))
    text = report(runs, args)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
