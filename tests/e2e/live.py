"""Serving the API on a real port for end-to-end tests, and waiting for what it does.

The server runs uvicorn in a thread of the test process (its own event loop), so a test can
look at the app's state; the quickstart test runs ``arqd serve`` as a real subprocess instead.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import orjson
import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp
from websockets.asyncio.client import ClientConnection

from arqd.core.settings import Settings
from conftest import free_port

API_KEY = "test-key-1"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
T = TypeVar("T")


class LiveServer:
    """uvicorn serving ``app`` (or ``app`` wrapped in ``outer``) on 127.0.0.1, in a thread."""

    def __init__(self, app: FastAPI, port: int | None = None, outer: ASGIApp | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        served = outer or app
        config = uvicorn.Config(served, host="127.0.0.1", port=self.port, log_level="warning")
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
        **overrides,
    }
    return Settings(**values)


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
