"""The worker: one task group ties fetching, running, answering and the heartbeat.

Fetching (sized by free slots, blocking on a wake-up key when idle) is in ``fetching``;
attempts and their batched answers in ``running``; the heartbeat (lease renewal,
cancellation and lost-lease notices, the worker registry) in ``leases``. SIGTERM or SIGINT
stop the fetching; running attempts get the grace period, then are handed back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from arqd.core.ids import new_task_id
from arqd.core.settings import Settings
from arqd.store.leases import Limit
from arqd.store.store import Store
from arqd.worker.fetching import Fetcher
from arqd.worker.leases import Heartbeat
from arqd.worker.registry import Registry
from arqd.worker.relaying import Relayer
from arqd.worker.running import Runner
from arqd.worker.scheduling import Scheduler
from arqd.worker.storage import WorkerStore

if TYPE_CHECKING:
    from arqd.observability.metrics import Metrics

log = logging.getLogger("arqd.worker")


class Worker:
    """Runs the task types of ``registry`` from ``queues`` with ``concurrency`` slots."""

    def __init__(
        self,
        registry: Registry,
        store: Store,
        queues: Sequence[str] | None = None,
        concurrency: int | None = None,
        worker_id: str | None = None,
        metrics: Metrics | None = None,
        traced: bool = False,
    ) -> None:
        self.registry = registry
        self.metrics = metrics
        self.traced = traced
        self.settings: Settings = store.settings
        self.queues = list(queues or [self.settings.queue])
        self.concurrency = concurrency or self.settings.concurrency
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{new_task_id()[:6]}"
        self.store = WorkerStore(store, self.id, _limits(registry))
        self.started_at = time.time()
        self._stopping = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: Runner | None = None
        self._fetcher: Fetcher | None = None
        self.registered = False  # in the registry of live workers: Redis was reachable
        self.scheduler: Scheduler | None = None  # runs the queues' schedules, once started

    @property
    def processed(self) -> int:
        """Attempts that ended with an answer (whatever the outcome)."""
        return self._runner.processed if self._runner is not None else 0

    def stop(self) -> None:
        """Stop fetching; running attempts get the grace period (safe from a signal handler)."""
        self._stopping.set()
        if self._loop is not None and self._fetcher is not None:
            self._loop.call_soon_threadsafe(self._fetcher.interrupt_wait)

    async def run(self, install_signals: bool = True) -> None:
        """Work until ``stop()`` or SIGTERM/SIGINT, then shut down gracefully."""
        self._loop = asyncio.get_running_loop()
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(sig, self.stop)
        runner = self._runner = Runner(
            self.registry, self.store, self.concurrency, self.metrics, self.traced
        )
        try:
            await self.store.register(self.describe())
            self.registered = True
        except BaseException:
            runner.close()
            raise
        log.info(
            "worker %s started: queues=%s concurrency=%d types=%s",
            self.id,
            self.queues,
            self.concurrency,
            sorted(self.registry.types),
        )
        fetcher = self._fetcher = Fetcher(
            self.store, runner, self.queues, self.concurrency, self._stopping
        )
        try:
            await self._work(runner, fetcher)
        finally:
            runner.close()
            await fetcher.close()
            await self._sign_off(runner)

    async def _work(self, runner: Runner, fetcher: Fetcher) -> None:
        done = asyncio.Event()
        heartbeat = Heartbeat(self.store, runner.running, self.describe, done)
        declared = list(self.registry.schedules.values())
        relayer = Relayer(self.store)
        runner.answers.on_relay = relayer.finished
        scheduler = self.scheduler = Scheduler(
            self.store, self.queues, declared, self._stopping, relayer.sweep
        )
        async with asyncio.TaskGroup() as group:
            group.create_task(heartbeat.run())
            group.create_task(scheduler.run())
            group.create_task(runner.answers.run())
            group.create_task(relayer.run())
            await fetcher.run()
            await runner.drain(self.settings.shutdown_grace / 1000)
            done.set()
            runner.answers.close()
            relayer.close()

    async def _sign_off(self, runner: Runner) -> None:
        try:
            await runner.answers.flush()
            await self.store.remove()
        except (RedisError, OSError) as exc:
            log.error(
                "could not record the last answers (their leases will lapse and "
                "the tasks run again): %s",
                exc,
            )
        log.info("worker %s stopped after %d tasks", self.id, self.processed)

    def describe(self) -> dict[str, Any]:
        """What the registry of live workers shows of this one."""
        return {
            "id": self.id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": self.queues,
            "concurrency": self.concurrency,
            "running": self._runner.running.ids() if self._runner is not None else [],
            "processed": self.processed,
            "started_at": self.started_at,
            "types": sorted(self.registry.types),
            "breakers": sorted(t.name for t in self.registry if t.breaker),
            "defaults": self._defaults(),
        }

    def _defaults(self) -> dict[str, list[float]]:
        """Each type's max retries and attempt timeout (s) where a task sets neither: what
        ``Client.get`` shows as the task's effective values."""
        s = self.settings
        return {
            t.name: [
                s.queue_max_retries if t.max_retries is None else t.max_retries,
                t.timeout or s.task_timeout / 1000,
            ]
            for t in self.registry
        }


def _limits(registry: Registry) -> list[Limit]:
    """The task types' rate and concurrency limits, for the dequeue script."""
    return [
        Limit(
            t.name,
            t.rate_limit.interval_ms if t.rate_limit else 0.0,
            t.rate_limit.burst if t.rate_limit else 1,
            t.concurrency or 0,
        )
        for t in registry
        if t.rate_limit or t.concurrency
    ]
