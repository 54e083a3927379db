"""Supervision: Workers kept running across Redis outages, for ``arqd worker`` and the
worker ``arqd serve`` runs in its own event loop.

A Worker that cannot reach Redis when it starts gives up; the supervisor starts a new one
after a pause (exponential, with jitter), so a worker started before its Redis, or one
that lost it at the wrong moment, ends up working once Redis is back. The wait is logged
once, not at every try.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from arqd.core.backoff import Reconnect
from arqd.core.settings import Settings
from arqd.store.store import Store
from arqd.worker.registry import Registry
from arqd.worker.storage import open_store
from arqd.worker.worker import Worker

if TYPE_CHECKING:
    from arqd.observability.metrics import Metrics

log = logging.getLogger("arqd.worker")


class Supervisor:
    """Runs Workers for ``registry`` on ``store`` until ``stop()``; the options are the
    Worker's. With ``owns_store`` the store is closed at the end."""

    def __init__(
        self,
        registry: Registry,
        store: Store,
        queues: Sequence[str] | None = None,
        concurrency: int | None = None,
        metrics: Metrics | None = None,
        traced: bool = False,
        owns_store: bool = False,
    ) -> None:
        self.registry = registry
        self.store = store
        self.queues = queues
        self.concurrency = concurrency
        self.metrics = metrics
        self.traced = traced
        self.owns_store = owns_store
        self.current: Worker | None = None
        self.backoff = Reconnect(base=0.25, cap=10.0)
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def connected(
        cls,
        registry: Registry,
        settings: Settings,
        url: str,
        metrics: Metrics | None = None,
        traced: bool = False,
    ) -> Supervisor:
        """A supervisor on a connection pool of its own (worker reads block for seconds,
        longer than an API process's socket timeout allows)."""
        store = open_store(url, settings)
        return cls(registry, store, metrics=metrics, traced=traced, owns_store=True)

    def stop(self) -> None:
        """Stop fetching; running tasks get the shutdown grace period (safe from a signal
        handler)."""
        self._stopping.set()
        if self.current is not None:
            self.current.stop()

    def start(self) -> None:
        """Run in a task of the running event loop (see ``shutdown``)."""
        self._task = asyncio.create_task(self.run())

    async def shutdown(self) -> None:
        """Stop, and wait until the task ``start`` made has ended."""
        self.stop()
        if self._task is not None:
            await self._task

    async def run(self, install_signals: bool = False) -> None:
        """Run workers until ``stop()`` (or SIGTERM/SIGINT with ``install_signals``)."""
        if install_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
        try:
            while not self._stopping.is_set():
                await self._run_one()
        finally:
            if self.owns_store:
                await self.store.close()

    async def _run_one(self) -> None:
        worker = self.current = Worker(
            self.registry,
            self.store,
            self.queues,
            self.concurrency,
            metrics=self.metrics,
            traced=self.traced,
        )
        if self._stopping.is_set():
            return
        try:
            await worker.run(install_signals=False)
        except (RedisError, OSError) as exc:
            self._failed(worker, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.backoff.next())

    def _failed(self, worker: Worker, exc: BaseException) -> None:
        """Say once that the worker waits for Redis; the retries that follow are quiet."""
        if worker.registered:  # it had worked: a new outage, worth saying again
            self.backoff.reset()
        if self.backoff.failures == 0:
            log.warning("cannot reach Redis (%s); the worker will start once it can", exc)
        else:
            log.debug("Redis still unreachable: %s", exc)
