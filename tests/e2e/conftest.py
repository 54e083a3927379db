"""Fixtures for end-to-end tests: the API on a free port with a worker, and an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from arqd.api import create_app
from arqd.core.settings import Settings
from arqd.store.store import Store
from conftest import RedisServer
from e2e.live import AUTH, LiveServer, settings_for, store_for


@pytest.fixture
def api_settings(redis_url: str) -> Settings:
    """The API's settings on the test's Redis (its topology: see ``topologies``)."""
    return settings_for(redis_url)


@pytest.fixture
def live(api_settings: Settings) -> Iterator[LiveServer]:
    """The API with an in-process worker running the demo task types."""
    server = LiveServer(create_app(api_settings, with_worker=True))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def http(live: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live.url, headers=AUTH, timeout=10) as client:
        yield client


@pytest.fixture
async def store(api_settings: Settings) -> AsyncIterator[Store]:
    """A store on the API's Redis and key prefix."""
    async with store_for(api_settings) as api_store:
        yield api_store


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis server of the test's own, for tests that stop or kill it."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()
