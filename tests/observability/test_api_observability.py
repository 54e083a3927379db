"""`arqd serve` and a worker together: one trace from HTTP request to handler, and a real
Prometheus scraping both."""

from __future__ import annotations

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

from arqd.core.settings import Settings
from conftest import WorkerProcess, eventually, free_port


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
