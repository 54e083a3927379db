"""Behind Sentinel, a failover during a run: the workers and the API follow the new master,
every task completes, and the API answers 503 meanwhile, never 500."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from arqd.api import create_app
from arqd.client import Client
from arqd.core.settings import Settings
from conftest import WorkerProcess
from e2e.live import AUTH, LiveServer, settings_for
from failovers import kill_a_master_under_load, run_through_a_failover
from topologies import SentinelSetup

pytestmark = pytest.mark.topologies("sentinel")


async def test_workers_follow_a_failover_and_every_task_completes(
    client: Client,
    settings: Settings,
    sentinel_setup: SentinelSetup,
    workers: list[WorkerProcess],
) -> None:
    await run_through_a_failover(client, settings, workers, sentinel_setup.failover)
    await asyncio.to_thread(sentinel_setup.settle)


async def test_the_api_answers_503_with_retry_after_during_a_failover_never_500(
    sentinel_setup: SentinelSetup,
) -> None:
    settings = settings_for(sentinel_setup.url)
    server = LiveServer(create_app(settings, with_worker=True))
    server.start()
    statuses: list[int] = []
    try:
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=30) as http:

            async def post() -> httpx.Response:
                response = await http.post("/tasks", json={"type": "echo", "payload": 1})
                statuses.append(response.status_code)
                if response.status_code == 503:
                    assert int(response.headers["retry-after"]) >= 1
                return response

            assert (await post()).status_code == 201
            failing_over = asyncio.create_task(asyncio.to_thread(sentinel_setup.failover))
            while not failing_over.done():  # enqueue all the way through the failover
                await post()
            await failing_over
            started = time.monotonic()
            while (last := await post()).status_code != 201:
                assert time.monotonic() - started < 10, "the API did not follow the new master"
            done = await http.get(f"/tasks/{last.json()['id']}", params={"wait": 20})
            assert done.json()["status"] == "succeeded"  # the in-process worker followed too
    finally:
        server.stop()
        await asyncio.to_thread(sentinel_setup.settle)
    assert set(statuses) <= {201, 503}, statuses


async def test_a_killed_master_loses_no_acknowledged_task_and_the_api_answers_503(
    settings: Settings, sentinel_setup: SentinelSetup, workers: list[WorkerProcess]
) -> None:
    await kill_a_master_under_load(
        settings, sentinel_setup.url, workers, sentinel_setup.kill_master, sentinel_setup.revive
    )
