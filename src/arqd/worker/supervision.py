"""Supervision: Workers kept running across Redis outages, for ``arqd worker`` and the
worker ``arqd serve`` runs in its own event loop.

A Worker that cannot reach Redis when it starts gives up; the supervisor starts a new one
after a pause (exponential, with jitter), so a worker started before its Redis, or one
that lost it at the wrong moment, ends up working once Redis is back. The wait is logged
once, not at every try, naming the server (its password hidden).

With the embedded server (no REDIS_URL), an ``EmbeddedWatch`` says when that server is
stopped (``arqd embedded stop``) and when it is back; if it comes back on another port,
the supervisor moves its workers there.
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
from arqd.core.urls import redacted
from arqd.store.embedded import EmbeddedServer
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
        where: str = "Redis",
    ) -> None:
        self.registry = registry
        self.store = store
        self.where = where  # how messages name the server: "Redis at redis://host:6379/0"
        self.queues = queues
        self.concurrency = concurrency
        self.metrics = metrics
        self.traced = traced
        self.owns_store = owns_store
        self.current: Worker | None = None
        self.backoff = Reconnect(base=0.25, cap=10.0)
        self._stopping = asyncio.Event()
        self._nudged = asyncio.Event()  # end a pause early: stopping, or the store moved
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
        where = f"Redis at {redacted(url)}"
        return cls(registry, store, metrics=metrics, traced=traced, owns_store=True, where=where)

    def stop(self) -> None:
        """Stop fetching; running tasks get the shutdown grace period (safe from a signal
        handler)."""
        self._stopping.set()
        self._nudged.set()
        if self.current is not None:
            self.current.stop()

    def move_to(self, store: Store, where: str) -> None:
        """Run the next workers on ``store`` (the server moved): the current worker stops
        as on SIGTERM, and the store it used is closed once it has ended (if owned)."""
        self.store, self.where = store, where
        self.backoff.reset()
        self._nudged.set()
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
        store = self.store
        worker = self.current = Worker(
            self.registry,
            store,
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
                await asyncio.wait_for(self._nudged.wait(), self.backoff.next())
            self._nudged.clear()
        finally:
            if store is not self.store and self.owns_store:  # moved: this one is done
                await store.close()

    def _failed(self, worker: Worker, exc: BaseException) -> None:
        """Say once that the worker waits for Redis; the retries that follow are quiet."""
        if worker.registered:  # it had worked: a new outage, worth saying again
            self.backoff.reset()
        if self.backoff.failures == 0:
            log.warning("cannot reach %s (%s); the worker will start once it can", self.where, exc)
        else:
            log.debug("%s still unreachable: %s", self.where, exc)


class EmbeddedWatch:
    """Says what happens to the embedded server ``supervisor`` works on, by reading its
    record each ``every`` seconds: stopped, back, or moved (the supervisor follows)."""

    def __init__(
        self, server: EmbeddedServer, supervisor: Supervisor, url: str, every: float = 1.0
    ) -> None:
        self.server = server
        self.supervisor = supervisor
        self.using = url  # the URL the supervisor's store connects to
        self.every = every

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until ``stop`` is set."""
        seen: str | None = self.using
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every)
            recorded = self.server.recorded_url()
            if recorded != seen:
                self.changed(recorded)
                seen = recorded

    def changed(self, recorded: str | None) -> None:
        folder = self.server.data_dir
        if recorded is None:
            log.warning(
                "the embedded server of %s was stopped (arqd embedded stop); the worker "
                "waits for it to start again",
                folder,
            )
        elif recorded == self.using:
            log.info("the embedded server of %s is back at %s", folder, recorded)
        else:
            log.warning(
                "the embedded server of %s started again at %s (its port was taken); "
                "the worker moves there",
                folder,
                recorded,
            )
            self.using = recorded
            store = open_store(recorded, self.supervisor.store.settings)
            self.supervisor.move_to(store, f"Redis at {recorded}")
