"""A worker process's metrics and traces, seen by real Prometheus and an OTLP receiver."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import IO

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind
from otlp import Receiver
from prometheus import Prometheus
from prometheus_client.parser import text_string_to_metric_families

from arqd.client import Client, NewTask
from arqd.core.settings import Settings
from arqd.core.task import Task
from conftest import WorkerProcess, eventually, worker_environment
from topologies import free_port

EXPECTED = {
    "arq_tasks_processed": ("counter", {"type", "status"}),
    "arq_task_duration_seconds": ("histogram", {"type"}),
    "arq_task_retries": ("counter", {"type"}),
    "arq_task_wait_seconds": ("histogram", {"queue"}),
    "arq_rate_limited_requests": ("counter", {"scope"}),
    "arq_queue_length": ("gauge", {"queue"}),
    "arq_queue_tasks": ("gauge", {"queue", "status"}),
    "arq_dead_letter_size": ("gauge", {"queue"}),
    "arq_consumer_lag_seconds": ("gauge", {"queue"}),
    "arq_active_consumers": ("gauge", set()),
    "arq_uptime_seconds": ("gauge", set()),
    "arq_circuit_breaker_state": ("gauge", {"name"}),
    "arq_circuit_breaker_transitions": ("counter", {"name", "to"}),
}


async def run_workload(client: Client, ok: int, doomed: int) -> list[Task]:
    tasks = await client.enqueue_many(
        [NewTask("ok", i) for i in range(ok)] + [NewTask("doomed", i) for i in range(doomed)]
    )
    return [await client.wait(t.id, timeout=30) for t in tasks]


@pytest.fixture
def metrics_port(settings: Settings, workers: list[WorkerProcess]) -> int:
    port = free_port()
    workers.append(WorkerProcess(settings, "obs_tasks", METRICS_PORT=str(port)))
    return port


async def scrape(port: int) -> str:
    async with httpx.AsyncClient() as http:

        async def up() -> bool:
            try:
                return (await http.get(f"http://127.0.0.1:{port}/metrics")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(up, timeout=15)
        return (await http.get(f"http://127.0.0.1:{port}/metrics")).text


async def test_metric_names_types_and_labels(client: Client, metrics_port: int) -> None:
    await run_workload(client, ok=20, doomed=5)
    families = {f.name: f for f in text_string_to_metric_families(await scrape(metrics_port))}
    for name, (kind, labels) in EXPECTED.items():
        assert name in families, f"{name} is not exposed"
        assert families[name].type == kind, name
        for sample in families[name].samples:
            assert labels <= set(sample.labels) <= labels | {"le"}, (name, sample.labels)
    processed = {
        s.labels["status"]: s.value
        for s in families["arq_tasks_processed"].samples
        if s.name.endswith("_total")
    }
    assert processed == {"succeeded": 20.0, "failed": 5.0}
    (dead,) = families["arq_dead_letter_size"].samples
    assert (dead.labels, dead.value) == ({"queue": "default"}, 5.0)
    (consumers,) = families["arq_active_consumers"].samples
    assert consumers.value == 1.0


async def test_metrics_as_json(client: Client, metrics_port: int) -> None:
    await run_workload(client, ok=3, doomed=0)
    await scrape(metrics_port)
    async with httpx.AsyncClient() as http:
        body = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics.json")).json()
    by_name = {m["name"]: m for m in body["metrics"]}
    samples = by_name["arq_tasks_processed"]["samples"]
    assert {
        "name": "arq_tasks_processed_total",
        "labels": {"type": "ok", "status": "succeeded"},
        "value": 3.0,
    } in samples


async def test_a_real_prometheus_scrapes_the_worker(
    client: Client, metrics_port: int, tmp_path: Path
) -> None:
    prometheus = Prometheus(tmp_path, [f"127.0.0.1:{metrics_port}"])
    try:
        await run_workload(client, ok=90, doomed=10)
        prometheus.value_becomes('sum(arq_tasks_processed_total{status="succeeded"})', 90)
        prometheus.value_becomes('sum(arq_tasks_processed_total{status="failed"})', 10)
        prometheus.value_becomes('arq_dead_letter_size{queue="default"}', 10)
        prometheus.value_becomes('arq_queue_length{queue="default"}', 0)
        prometheus.value_becomes("arq_active_consumers", 1)
        prometheus.value_becomes('sum(arq_task_duration_seconds_count{type="ok"})', 90)
    finally:
        prometheus.stop()


async def test_the_worker_span_is_the_child_of_the_producer_span(
    client: Client, settings: Settings, workers: list[WorkerProcess]
) -> None:
    with Receiver() as receiver:
        workers.append(
            WorkerProcess(
                settings,
                "obs_tasks",
                JAEGER_ENABLED="true",
                JAEGER_ENDPOINT=receiver.endpoint,
                OTEL_BSP_SCHEDULE_DELAY="50",
            )
        )
        producer = TracerProvider().get_tracer("test")
        with producer.start_as_current_span("checkout", kind=SpanKind.PRODUCER) as parent:
            task = await client.enqueue("doomed", {"order": 7})
        await client.wait(task.id, timeout=30)
        (span,) = receiver.wait_for(1)
    context = parent.get_span_context()
    assert span.trace_id == context.trace_id.to_bytes(16, "big")
    assert span.parent_span_id == context.span_id.to_bytes(8, "big")
    assert span.name == "arqd.task doomed"
    attributes = {a.key: a.value for a in span.attributes}
    assert attributes["arqd.task.id"].string_value == task.id
    assert attributes["arqd.queue"].string_value == "default"
    assert attributes["arqd.attempt"].int_value == 1
    assert span.status.code == span.status.STATUS_CODE_ERROR
    assert [e.name for e in span.events] == ["exception"]
    assert receiver.services == ["arqd-worker"]


def logging_worker(settings: Settings, log: IO[bytes], **env: str) -> subprocess.Popen[bytes]:
    """``arqd worker obs_tasks`` with its log lines written to ``log``."""
    return subprocess.Popen(
        [sys.executable, "-m", "arqd", "worker", "obs_tasks"],
        env=worker_environment(settings, 5000, **env),
        stdout=subprocess.DEVNULL,
        stderr=log,
    )


async def test_each_attempt_log_line_carries_its_span_ids(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    log_file = tmp_path / "worker.log"
    env = {"ARQD_LOG_FORMAT": "json", "JAEGER_ENABLED": "true", "OTEL_BSP_SCHEDULE_DELAY": "50"}
    with Receiver() as receiver, log_file.open("wb") as log:
        process = logging_worker(settings, log, JAEGER_ENDPOINT=receiver.endpoint, **env)
        try:
            tasks = [await client.enqueue("ok", 1), await client.enqueue("doomed", 2)]
            for task in tasks:
                await client.wait(task.id, timeout=30)
            spans = receiver.wait_for(2)
        finally:
            process.kill()
            process.wait()
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    attempts = {line["task_id"]: line for line in lines if "outcome" in line}
    assert set(attempts) == {t.id for t in tasks}
    for span in spans:
        (task_id,) = [a.value.string_value for a in span.attributes if a.key == "arqd.task.id"]
        line = attempts[task_id]
        assert line["trace_id"] == span.trace_id.hex()
        assert line["span_id"] == span.span_id.hex()
