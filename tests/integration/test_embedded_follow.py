"""Workers on the embedded server through ``arqd embedded stop`` and the next start: the
watch says what happened, and when the server comes back on another port (its own was
taken meanwhile) the supervisor moves its workers there."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from arqd.client import Client
from arqd.core.settings import Settings
from arqd.core.task import TaskStatus
from arqd.store.embedded import EmbeddedServer
from arqd.worker import Registry
from arqd.worker.storage import open_store
from arqd.worker.supervision import EmbeddedWatch, Supervisor

registry = Registry()


@registry.task()
async def echo(payload: object) -> object:
    return payload


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[EmbeddedServer]:
    server = EmbeddedServer(tmp_path / "data")
    await asyncio.to_thread(server.ensure_running)
    yield server
    await asyncio.to_thread(server.stop)


async def run_one(url: str, settings: Settings, payload: int) -> TaskStatus:
    async with Client.connect(url, settings) as client:
        task = await client.enqueue("echo", payload)
        return (await client.wait(task.id, timeout=30)).status


async def test_the_worker_follows_the_server_to_its_new_port(
    embedded: EmbeddedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "arqd.worker")
    url = embedded.url
    assert url is not None
    settings = Settings(redis_url=url, key_prefix=f"t{uuid.uuid4().hex[:10]}", lease_timeout=1500)
    supervisor = Supervisor(registry, open_store(url, settings), owns_store=True)
    watch = EmbeddedWatch(EmbeddedServer(embedded.data_dir), supervisor, url, every=0.05)
    stop = asyncio.Event()
    running = [asyncio.create_task(supervisor.run()), asyncio.create_task(watch.run(stop))]
    try:
        assert await run_one(url, settings, 1) is TaskStatus.SUCCEEDED

        await asyncio.to_thread(embedded.stop)
        await until_logged(caplog, "was stopped (arqd embedded stop)")
        with socket.socket() as squatter:  # another program takes the port meanwhile
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
            squatter.bind(("127.0.0.1", port_of(url)))
            squatter.listen()
            moved = await asyncio.to_thread(embedded.ensure_running)
        assert moved != url
        await until_logged(caplog, f"started again at {moved} (its port was taken)")

        assert await run_one(moved, settings, 2) is TaskStatus.SUCCEEDED
    finally:
        stop.set()
        supervisor.stop()
        await asyncio.wait_for(asyncio.gather(*running), 30)


async def test_the_watch_says_when_the_server_is_back_on_its_port(
    embedded: EmbeddedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "arqd.worker")
    url = embedded.url
    assert url is not None
    settings = Settings(redis_url=url, key_prefix=f"t{uuid.uuid4().hex[:10]}")
    supervisor = Supervisor(registry, open_store(url, settings), owns_store=True)
    watch = EmbeddedWatch(EmbeddedServer(embedded.data_dir), supervisor, url, every=0.05)
    stop = asyncio.Event()
    watching = asyncio.create_task(watch.run(stop))
    try:
        await asyncio.to_thread(embedded.stop)
        await until_logged(caplog, "was stopped (arqd embedded stop)")
        assert await asyncio.to_thread(embedded.ensure_running) == url
        await until_logged(caplog, f"is back at {url}")
        assert supervisor.store.settings is settings  # nothing moved
    finally:
        stop.set()
        await watching
        await supervisor.store.close()


async def until_logged(caplog: pytest.LogCaptureFixture, text: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not any(text in record.getMessage() for record in caplog.records):
        assert asyncio.get_running_loop().time() < deadline, f"never logged {text!r}"
        await asyncio.sleep(0.02)
