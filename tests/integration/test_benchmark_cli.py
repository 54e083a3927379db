"""``arqd bench``'s engine (``arqd.benchmark``) with tiny numbers against a private Redis:
every figure is there and sane, and the run leaves no key behind. No timing thresholds."""

from __future__ import annotations

import redis
from rich.console import Console

from arqd.benchmark import render, run_benchmark
from conftest import RedisServer


def test_run_benchmark_reports_every_workload(redis_server: RedisServer) -> None:
    before = set(redis.Redis.from_url(redis_server.url).keys())
    results = run_benchmark(redis_server.url, tasks=300, rate=100, seconds=1, concurrency=20)

    assert results["tasks"] == 300
    assert results["concurrency"] == 20
    assert results["redis_version"]
    for key in ("enqueue_one_per_s", "enqueue_batch_per_s", "process_noop_per_s",
                "process_incr_per_s"):  # fmt: skip
        assert 0 < results[key] < 10_000_000, key
    latency = results["latency"]
    assert latency["rate"] == 100
    assert latency["samples"] == 100
    assert latency["achieved"] > 0
    assert 0 <= latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"] < 60_000

    # Nothing new is left behind (other tests' keys may expire meanwhile).
    assert set(redis.Redis.from_url(redis_server.url).keys()) - before == set()

    console = Console(record=True, width=120)
    console.print(render(results))
    text = console.export_text()
    assert "enqueue, one at a time" in text
    assert "p99" in text
