"""The worker ``arqd serve`` runs in its own event loop, kept alive across Redis outages.

A Worker that cannot reach Redis when it starts gives up; here a new one is started after a
pause instead, so an API process started before its Redis still ends up running tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.exceptions import RedisError

from arqd.core.settings import Settings
from arqd.observability.metrics import Metrics
from arqd.store.connection import connect
from arqd.store.store import Store
from arqd.worker import Registry, Worker

log = logging.getLogger("arqd.api")
RESTART_DELAY = 1.0


class InProcessWorker:
    """Runs Workers for ``registry`` on the default queue until ``stop()``."""

    def __init__(
        self,
        registry: Registry,
        settings: Settings,
        url: str,
        metrics: Metrics | None = None,
        traced: bool = False,
    ) -> None:
        self.registry = registry
        self.metrics = metrics
        self.traced = traced
        self.settings = settings
        self.url = url
        self.current: Worker | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise())

    async def stop(self) -> None:
        """Stop fetching; running tasks get the shutdown grace period."""
        self._stopping.set()
        if self.current is not None:
            self.current.stop()
        if self._task is not None:
            await self._task

    async def _supervise(self) -> None:
        # Its own connection pool: worker reads block for seconds, longer than the API's
        # socket timeout allows.
        store = Store(connect(self.url), self.settings)
        try:
            while not self._stopping.is_set():
                self.current = Worker(
                    self.registry, store, metrics=self.metrics, traced=self.traced
                )
                try:
                    await self.current.run(install_signals=False)
                except (RedisError, OSError) as exc:
                    log.warning("in-process worker stopped (%s); restarting", exc)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), RESTART_DELAY)
        finally:
            await store.close()
