"""Serving the API on a real port for end-to-end tests, and waiting for what it does.

The server runs uvicorn in a thread of the test process (its own event loop), so a test can
look at the app's state; the quickstart test runs ``arqd serve`` as a real subprocess instead.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
import orjson
import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp
from websockets.asyncio.client import ClientConnection

from arqd.api.ws_protocol import BoundedCloseProtocol
from arqd.core.settings import Settings
from arqd.store.connection import connect
from arqd.store.store import Store
from topologies import free_port

API_KEY = "test-key-1"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
T = TypeVar("T")


class LiveServer:
    """uvicorn serving ``app`` (or ``app`` wrapped in ``outer``) on 127.0.0.1, in a thread."""

    def __init__(self, app: FastAPI, port: int | None = None, outer: ASGIApp | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        served = outer or app
        config = uvicorn.Config(
            served,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            ws=BoundedCloseProtocol,  # as ``arqd serve`` runs it
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn exited during start-up"
            assert time.monotonic() < deadline, "uvicorn did not start in time"
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        assert not self.thread.is_alive(), "uvicorn did not stop"


class ApiProcess:
    """``arqd serve --no-worker`` in a process of its own, on the Redis, key prefix, API keys
    and rate limit of ``settings``; ``env`` adds to its environment."""

    def __init__(self, settings: Settings, **env: str) -> None:
        self.port = free_port()
        environ = {k: v for k, v in os.environ.items() if not k.startswith("ARQD_")}
        environ |= {
            "REDIS_URL": settings.redis_url or "",
            "ARQD_KEY_PREFIX": settings.key_prefix,
            "API_KEYS": settings.api_keys or "",
            "REQUESTS_PER_MINUTE": str(settings.requests_per_minute),
            "ARQD_LOG_LEVEL": "warning",
            **env,
        }
        command = [sys.executable, "-m", "arqd", "serve", "--no-worker", "--port", str(self.port)]
        self.process = subprocess.Popen(
            command, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def started(self) -> None:
        """Wait until it answers /health."""

        async def healthy() -> bool:
            assert self.process.poll() is None, "arqd serve exited"
            try:
                async with httpx.AsyncClient() as http:
                    return (await http.get(f"{self.url}/health")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_until(healthy, timeout=60)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


def settings_for(redis_url: str, **overrides: Any) -> Settings:
    """Settings for one test: its own key prefix, short leases and retry delays."""
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "key_prefix": f"t{uuid.uuid4().hex[:10]}",
        "api_keys": f"{API_KEY},other-key-2",
        "lease_timeout": 1500,
        "retry_base_delay": 50,
        "retry_max_delay": 500,
        "shutdown_grace": 2000,
        # Far above what a test sends, but on: every request passes through the limiter.
        "requests_per_minute": 1_000_000,
        "auth_failures_per_minute": 1_000_000,  # likewise for wrong API keys
        **overrides,
    }
    return Settings(**values)


@asynccontextmanager
async def store_for(settings: Settings) -> AsyncIterator[Store]:
    """A store on the Redis and key prefix ``settings`` name; closed on exit."""
    store = Store(connect(settings.redis_url or ""), settings)
    try:
        yield store
    finally:
        await store.close()  # its shared connections too (the scripts' and events' reads)


async def wait_until(check: Callable[[], Awaitable[T | None]], timeout: float = 10.0) -> T:
    """Await ``check`` until it returns something other than None (or False)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value is not None and value is not False:
            return value
        assert time.monotonic() < deadline, "timed out waiting for a condition"
        await asyncio.sleep(0.02)


async def next_message(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    """The next WebSocket message, parsed; fails the test if none comes in time."""
    raw = await asyncio.wait_for(ws.recv(), timeout)
    message: dict[str, Any] = orjson.loads(raw)
    return message


async def events_of(
    ws: ClientConnection, task_id: str, until: str, timeout: float = 10.0
) -> list[dict[str, Any]]:
    """The task's events, read in arrival order up to and including event ``until``."""
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["event"] != until:
        message = await next_message(ws, timeout)
        if message["task_id"] == task_id:
            seen.append(message)
    return seen


async def finished(http: httpx.AsyncClient, task_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """Poll the task over HTTP until it has finished."""

    async def check() -> dict[str, Any] | None:
        task: dict[str, Any] = (await http.get(f"/tasks/{task_id}")).json()
        return task if task["status"] in ("succeeded", "failed", "cancelled") else None

    return await wait_until(check, timeout)
