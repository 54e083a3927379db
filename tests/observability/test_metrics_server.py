"""The worker's own metrics server: its routes, answers to what it does not serve, a busy
port, and a scrape that cannot be answered."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Coroutine

import httpx
import pytest

from arqd.observability import server
from arqd.observability.metrics import Metrics
from arqd.observability.server import serve_metrics
from arqd.store.store import Store
from conftest import eventually
from topologies import free_port


@pytest.fixture
async def served(store: Store) -> AsyncIterator[str]:
    port = free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(serve_metrics(Metrics(), store, "127.0.0.1", port, stop))
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as http:

        async def listening() -> bool:  # the server thread binds its port
            try:
                return (await http.get(f"{url}/health")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(listening)
    yield url
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_routes_answer_over_one_kept_alive_connection(served: str, store: Store) -> None:
    await store.redis.set(f"{store.keys.prefix}:probe", 1)
    async with httpx.AsyncClient(base_url=served) as http:
        text = await http.get("/metrics")
        as_json = await http.get("/metrics.json")
        health = await http.get("/health")
        head = await http.head("/health")
        missing = await http.get("/nothing")
    assert text.status_code == 200
    assert text.headers["content-type"].startswith("text/plain")
    assert "arq_uptime_seconds" in text.text
    assert as_json.status_code == 200
    assert isinstance(as_json.json(), dict)
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert (head.status_code, head.content) == (200, b"")
    assert missing.status_code == 404


async def test_a_busy_port_is_logged_and_the_worker_goes_on(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.ERROR, "arqd.metrics"):
            await asyncio.wait_for(
                serve_metrics(Metrics(), store, "127.0.0.1", port, asyncio.Event()), 5
            )
    assert "could not listen" in caplog.text
    assert "METRICS_PORT" in caplog.text


async def test_a_scrape_that_fails_is_a_503_and_the_server_stays_up(
    served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(metrics: Metrics, refresh: Awaitable[None]) -> Metrics:
        if isinstance(refresh, Coroutine):
            refresh.close()  # never run: the scrape fails before it reads Redis
        raise RuntimeError("the gauges could not be read")

    monkeypatch.setattr(server, "refreshed", broken)
    async with httpx.AsyncClient(base_url=served) as http:
        scraped = await http.get("/metrics")
        health = await http.get("/health")
        monkeypatch.undo()
        again = await http.get("/metrics")
    assert scraped.status_code == 503
    assert "try again" in scraped.text
    assert health.status_code == 200
    assert again.status_code == 200
