"""arqd: in process as a ``System`` for ``bench.core`` (its public async Client, workers
``arqd worker bench.tasks``), and as a ``Peer`` for ``bench.compare`` (workers
``arqd worker arqd.benchmark:registry``, driven like every peer)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

from arqd.benchmark import busy_seconds
from arqd.client import Client
from arqd.core.settings import Settings
from arqd.core.task import NewTask
from arqd.store.connection import connect
from arqd.store.store import Store
from bench.model import Payload
from bench.procs import REPO, as_deployed
from bench.systems.spec import Peer, Setting


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
        env = as_deployed(env)
        _compile_once(env)
        return [arqd_command(), "worker", "bench.tasks"], env

    async def worker_ready(self) -> bool:
        return bool(await self.client.workers())

    async def pending(self) -> int:
        s = (await self.client.stats(self.settings.queue))[0]
        return s.queued + s.scheduled + s.active

    async def failed(self) -> int:
        return (await self.client.stats(self.settings.queue))[0].failed

    async def busy_seconds(self) -> float | None:
        """From the tasks' own start and finish times (ms, Redis clock)."""
        return await busy_seconds(self.client, self._ids)

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


def _compile_once(env: dict[str, str]) -> None:
    """Fill the bytecode cache before the first worker, so no measured worker compiles."""
    _compile(env["PYTHONPYCACHEPREFIX"], env.get("PYTHONPATH", ""))


@functools.cache
def _compile(cache: str, path: str) -> None:
    env = {**os.environ, "PYTHONPYCACHEPREFIX": cache, "PYTHONPATH": path}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    imports = "import arqd.cli, arqd.benchmark, bench.tasks, uvloop"
    subprocess.run([sys.executable, "-c", imports], env=env, cwd=REPO, check=True)


def arqd_command() -> str:
    beside = Path(sys.executable).with_name("arqd")
    found = str(beside) if beside.exists() else shutil.which("arqd")
    if not found:
        raise RuntimeError("the arqd command is not installed (run `uv sync`)")
    return found


_WORKER = ("{bin}/arqd", "worker", "arqd.benchmark:registry")

PEER = Peer(
    name="arqd",
    title="arqd",
    kind="arqd",
    distribution="arqd",
    packages=(),
    batch="Client.enqueue_many",
    default=Setting("concurrency 50 (default)", 50, _WORKER),
    tuned=Setting("concurrency 100", 100, _WORKER),
)
