"""Fixtures for the dashboard's tests: the API (with a worker) on a real port, signed-in
HTTP clients, and a client of the same Redis to check what actions did."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from arqd import demo
from arqd.api import create_app
from arqd.client import REQUESTS, WORKER, Client
from arqd.core.settings import Settings
from arqd.store.connection import connect
from arqd.store.store import Store
from arqd.worker import Registry, Worker
from conftest import RedisServer
from e2e.live import API_KEY, LiveServer, settings_for
from tools import CHROMIUM, require
from ui.browser import CHROMIUM_ARGS

T = TypeVar("T")
READ_ONLY_KEY = "other-key-2"  # the second of settings_for's API keys
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Redis:
    """A client of the server's Redis and key prefix, run on a loop of its own, so sync
    tests (the browser's) can check what the dashboard changed."""

    def __init__(self, settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.settings = settings
        self.client = Client.connect(settings.redis_url or "", settings, REQUESTS)
        self.workers: list[tuple[Worker, asyncio.Future[None]]] = []

    def start_worker(self, queues: list[str], registry: Registry = demo.registry) -> Worker:
        """A worker of ``registry``'s task types (the demo's) on ``queues``, stopped by
        ``close``."""
        store = Store(connect(self.settings.redis_url or "", WORKER), self.settings)
        worker = Worker(registry, store, queues=queues)
        running = asyncio.run_coroutine_threadsafe(worker.run(install_signals=False), self.loop)
        self.workers.append((worker, asyncio.wrap_future(running, loop=self.loop)))
        return worker

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(30)

    def close(self) -> None:
        for worker, running in self.workers:
            self.loop.call_soon_threadsafe(worker.stop)
            self.run(asyncio.wait_for(running, 30))
            self.run(worker.store.store.close())
        self.run(self.client.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def serve(settings: Settings) -> LiveServer:
    server = LiveServer(create_app(settings, with_worker=True))
    server.start()
    return server


@pytest.fixture(scope="module")
def ui_settings(redis_server: RedisServer) -> Settings:
    """API keys set, the second of them read-only."""
    return settings_for(redis_server.url, read_only_keys=READ_ONLY_KEY)


@pytest.fixture(scope="module")
def ui_server(ui_settings: Settings) -> Iterator[LiveServer]:
    server = serve(ui_settings)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redis(ui_settings: Settings) -> Iterator[Redis]:
    checker = Redis(ui_settings)
    yield checker
    checker.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """The system's Chromium, headless, one per module (skipped, or failed under CI=true,
    where it is missing)."""
    executable = require(CHROMIUM)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found is not None, "the page has no CSRF token"
    return found.group(1)


@contextmanager
def signed_in(server: LiveServer, key: str = API_KEY) -> Iterator[httpx.Client]:
    """An HTTP client with a dashboard session signed in with ``key``."""
    with httpx.Client(base_url=server.url, timeout=10) as http:
        token = csrf_of(http.get("/ui/login"))
        answer = http.post("/ui/login", data={"csrf": token, "key": key, "next": "/ui"})
        assert answer.status_code == 303, answer.text
        yield http
