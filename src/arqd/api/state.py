"""What the routes share for the life of one app: settings, the clients, counters."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fastapi import Request

from arqd.client import Client
from arqd.core.settings import Settings
from arqd.observability.metrics import Metrics


@dataclass
class ApiState:
    """Held in ``app.state.arqd``; the lifespan attaches the clients."""

    settings: Settings
    event_buffer: int = 1000
    send_timeout: float = 10.0  # seconds a WebSocket message may wait to be sent (events.py)
    started: float = field(default_factory=time.monotonic)
    slow_consumers_closed: int = 0
    inflight: int = 0  # HTTP requests being served now (see shedding.py)
    metrics: Metrics | None = None
    _client: Client | None = None
    _feeds: Client | None = None

    def attach(self, client: Client, feeds: Client) -> None:
        """Start serving with ``client`` for requests and ``feeds`` for blocking reads
        (WebSocket feeds, long polls): each of those holds a connection for up to a
        second, so they draw on a pool of their own and cannot starve the requests."""
        self._client = client
        self._feeds = feeds

    @property
    def client(self) -> Client:
        assert self._client is not None, "the app's lifespan has not started"
        return self._client

    @property
    def feeds(self) -> Client:
        assert self._feeds is not None, "the app's lifespan has not started"
        return self._feeds

    def uptime(self) -> float:
        return time.monotonic() - self.started


async def api_state(request: Request) -> ApiState:
    """FastAPI dependency: the app's shared state (async: FastAPI runs a plain ``def`` in a
    worker thread, which costs more than the whole lookup)."""
    state: ApiState = request.app.state.arqd
    return state
