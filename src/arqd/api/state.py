"""What the routes share for the life of one app: settings, the client, counters."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fastapi import Request

from arqd.api.batching import EnqueueBatcher
from arqd.client import Client
from arqd.core.settings import Settings
from arqd.observability.metrics import Metrics
from arqd.store.store import Store


@dataclass
class ApiState:
    """Held in ``app.state.arqd``; the lifespan fills in the client."""

    settings: Settings
    event_buffer: int = 1000
    started: float = field(default_factory=time.monotonic)
    slow_consumers_closed: int = 0
    inflight: int = 0  # HTTP requests being served now (see shedding.py)
    metrics: Metrics | None = None
    _client: Client | None = None
    _batcher: EnqueueBatcher | None = None
    _feeds: Store | None = None

    def attach(self, client: Client, feeds: Store) -> None:
        """Start serving with ``client`` for requests and ``feeds`` for WebSocket reads."""
        self._client = client
        self._batcher = EnqueueBatcher(client)
        self._feeds = feeds

    @property
    def client(self) -> Client:
        assert self._client is not None, "the app's lifespan has not started"
        return self._client

    @property
    def feeds(self) -> Store:
        assert self._feeds is not None, "the app's lifespan has not started"
        return self._feeds

    @property
    def batcher(self) -> EnqueueBatcher:
        assert self._batcher is not None, "the app's lifespan has not started"
        return self._batcher

    def uptime(self) -> float:
        return time.monotonic() - self.started


async def api_state(request: Request) -> ApiState:
    """FastAPI dependency: the app's shared state (async: FastAPI runs a plain ``def`` in a
    worker thread, which costs more than the whole lookup)."""
    state: ApiState = request.app.state.arqd
    return state
