"""`arqd serve` and a worker together: one trace from HTTP request to handler, and a real
Prometheus scraping both."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from otlp import Receiver
from prometheus import Prometheus
from prometheus_client.parser import text_string_to_metric_families

from arqd.api import create_app
from arqd.api.state import ApiState
from arqd.client import Client
from arqd.core.settings import Settings
from conftest import RedisServer, WorkerProcess, eventually
from e2e.live import AUTH, LiveServer, settings_for, store_for, wait_until
from topologies import free_port


class ServeProcess:
    def __init__(self, settings: Settings, **env: str) -> None:
        self.port = free_port()
        environ = {
            **os.environ,
            "REDIS_URL": settings.redis_url or "",
            "ARQD_KEY_PREFIX": settings.key_prefix,
            "ARQD_LOG_LEVEL": "warning",
            "REQUESTS_PER_MINUTE": "0",  # a hundred requests in a few seconds
            **env,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "arqd", "serve", "--no-worker", "--port", str(self.port)],
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(20)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as started:
        yield started


@pytest.fixture
def serve(settings: Settings, receiver: Receiver) -> Iterator[ServeProcess]:
    tracing = {
        "JAEGER_ENABLED": "true",
        "JAEGER_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }
    process = ServeProcess(settings, **tracing)
    yield process
    process.stop()


async def up(http: httpx.AsyncClient) -> bool:
    try:
        return (await http.get("/health")).status_code == 200
    except httpx.TransportError:
        return False


async def test_one_trace_from_the_http_request_to_the_handler(
    settings: Settings, serve: ServeProcess, receiver: Receiver, workers: list[WorkerProcess]
) -> None:
    workers.append(
        WorkerProcess(
            settings,
            "obs_tasks",
            JAEGER_ENABLED="true",
            JAEGER_ENDPOINT=receiver.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="50",
        )
    )
    async with httpx.AsyncClient(base_url=serve.url) as http:
        await eventually(lambda: up(http), timeout=20)
        created = (await http.post("/tasks", json={"type": "ok", "payload": 1})).json()
        done = (await http.get(f"/tasks/{created['id']}", params={"wait": 10})).json()
    assert done["status"] == "succeeded"

    async def both_ends_arrived() -> bool:  # the API and the worker export separately
        ids = {s.span_id for s in receiver.spans}
        return any(s.name == "arqd.task ok" and s.parent_span_id in ids for s in receiver.spans)

    await eventually(both_ends_arrived, timeout=15)
    spans = receiver.wait_for(1)
    by_id = {s.span_id: (s, svc) for s, svc in zip(spans, receiver.services, strict=True)}
    (worker_span,) = [s for s in spans if s.name == "arqd.task ok"]
    parent, service = by_id[worker_span.parent_span_id]
    assert service == "arqd-api"
    assert parent.trace_id == worker_span.trace_id
    assert parent.kind == parent.SPAN_KIND_SERVER
    assert "POST /tasks" in parent.name


async def test_prometheus_scrapes_the_api_and_a_worker(
    settings: Settings, serve: ServeProcess, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    worker_port = free_port()
    workers.append(WorkerProcess(settings, "obs_tasks", METRICS_PORT=str(worker_port)))
    prometheus = Prometheus(tmp_path, [f"127.0.0.1:{serve.port}", f"127.0.0.1:{worker_port}"])
    try:
        async with httpx.AsyncClient(base_url=serve.url) as http:
            await eventually(lambda: up(http), timeout=20)
            batch = [{"type": "ok", "payload": i} for i in range(90)]
            batch += [{"type": "doomed", "payload": i} for i in range(10)]
            created = (await http.post("/tasks/batch", json={"tasks": batch})).json()["tasks"]
            for task in created:
                await http.get(f"/tasks/{task['id']}", params={"wait": 10})
            exposition = (await http.get("/metrics")).text
        families = {f.name: f for f in text_string_to_metric_families(exposition)}
        paths = {s.labels.get("path") for s in families["arq_http_requests"].samples}
        assert {"/tasks/batch", "/tasks/{task_id}"} <= paths  # route templates, not raw URLs

        prometheus.value_becomes('sum(arq_tasks_processed_total{status="succeeded"})', 90)
        prometheus.value_becomes('sum(arq_tasks_processed_total{status="failed"})', 10)
        prometheus.value_becomes("sum(arq_tasks_enqueued_total)", 100)
        prometheus.value_becomes('max(arq_dead_letter_size{queue="default"})', 10)
        prometheus.value_becomes("count(arq_uptime_seconds)", 2)
        prometheus.value_becomes(
            'sum(arq_http_requests_total{path="/tasks/batch",status="201"})', 1
        )
    finally:
        prometheus.stop()


BODY_LIMIT = 256


@pytest.fixture
def live_settings(redis_server: RedisServer) -> Settings:
    """One request in flight at most, a small body limit, and a key limited to one request
    a minute: each refusal is easy to provoke. No worker: tasks stay queued."""
    return settings_for(
        redis_server.url,
        max_inflight=1,
        max_body_bytes=BODY_LIMIT,
        rate_limit_overrides="other-key-2=1",
    )


@pytest.fixture
def live_api(live_settings: Settings) -> Iterator[LiveServer]:
    server = LiveServer(create_app(live_settings))
    server.start()
    yield server
    server.stop()


def samples(exposition: str, family_name: str, sample_name: str) -> dict[tuple[str, ...], float]:
    """The family's samples called ``sample_name``, by their label values (in label order)."""
    for family in text_string_to_metric_families(exposition):
        if family.name == family_name:
            return {
                tuple(sample.labels.values()): sample.value
                for sample in family.samples
                if sample.name == sample_name
            }
    return {}


def requests_counted(exposition: str) -> dict[tuple[str, ...], float]:
    return samples(exposition, "arq_http_requests", "arq_http_requests_total")


async def test_refusals_before_routing_are_counted_under_their_route_template(
    live_api: LiveServer,
) -> None:
    state: ApiState = live_api.app.state.arqd
    async with httpx.AsyncClient(base_url=live_api.url, timeout=30) as http:
        task_id = (await http.post("/tasks", json={"type": "echo"}, headers=AUTH)).json()["id"]
        statuses = [
            (await http.get(f"/tasks/{task_id}")).status_code,  # no key
            (await http.get("/queues", headers={"X-API-Key": "wrong"})).status_code,
            (await http.post("/tasks", content=b"x" * 1000, headers=AUTH)).status_code,
            (await http.post("/tasks", content=b"{}", headers=AUTH)).status_code,  # text
            (await http.get("/tasks", headers={"X-API-Key": "other-key-2"})).status_code,
            (await http.get("/tasks", headers={"X-API-Key": "other-key-2"})).status_code,
            (await http.get("/no-such-route", headers=AUTH)).status_code,
            (await http.get("/no-such-route")).status_code,
        ]
        assert statuses == [401, 401, 413, 415, 200, 429, 404, 401]

        held = asyncio.create_task(http.get(f"/tasks/{task_id}", params={"wait": 1}, headers=AUTH))

        async def holding() -> bool:
            return state.inflight == 1

        await wait_until(holding)
        shed = await http.post("/tasks/batch", json={"tasks": [{"type": "echo"}]}, headers=AUTH)
        assert shed.status_code == 503
        assert (await held).status_code == 200
        counted = requests_counted((await http.get("/metrics", headers=AUTH)).text)

    for labels in (
        ("GET", "/tasks/{task_id}", "401"),
        ("GET", "/queues", "401"),
        ("POST", "/tasks", "413"),
        ("POST", "/tasks", "415"),
        ("GET", "/tasks", "429"),
        ("POST", "/tasks/batch", "503"),
    ):
        assert counted.get(labels) == 1, (labels, counted)
    assert counted[("GET", "<unmatched>", "404")] == 1
    assert counted[("GET", "<unmatched>", "401")] == 1
    assert {path for _, path, status in counted if status in ("401", "429")} == {
        "/tasks/{task_id}",
        "/queues",
        "/tasks",
        "<unmatched>",
    }


async def test_long_polls_are_timed_apart_from_answers(live_api: LiveServer) -> None:
    async with (
        httpx.AsyncClient(base_url=live_api.url, headers=AUTH, timeout=30) as http,
        store_for(live_api.app.state.arqd.settings) as store,
    ):
        task_id = (await http.post("/tasks", json={"type": "echo"})).json()["id"]
        assert (await http.get(f"/tasks/{task_id}")).json()["status"] == "queued"
        waited = await http.get(f"/tasks/{task_id}", params={"wait": 1})
        assert waited.json()["status"] == "queued"  # no worker: the wait ran out
        await Client(store).cancel(task_id)
        # The task has finished: wait= answers at once, an answer like any other.
        finished = await http.get(f"/tasks/{task_id}", params={"wait": 5})
        assert finished.json()["status"] == "cancelled"
        exposition = (await http.get("/metrics")).text

    route = ("GET", "/tasks/{task_id}")
    answers = "arq_http_request_duration_seconds"
    polls = "arq_http_long_poll_duration_seconds"
    assert samples(exposition, answers, answers + "_count")[route] == 2
    assert samples(exposition, answers, answers + "_sum")[route] < 0.5
    assert samples(exposition, polls, polls + "_count")[route] == 1
    assert samples(exposition, polls, polls + "_sum")[route] >= 1.0
    assert requests_counted(exposition)[(*route, "200")] == 3
