"""The overview charts each queue's last hour of finished tasks and shows Redis's memory;
a queue's page charts its last 24 hours. Totals are in each chart's label."""

from __future__ import annotations

import re

from arqd.client import NewTask
from e2e.live import LiveServer
from ui.conftest import Redis, signed_in


def finish_some(redis: Redis) -> None:
    """On queue ``charts``: four tasks succeed (one after a retry), one fails for good."""
    redis.start_worker(["charts"])
    tasks = redis.run(
        redis.client.enqueue_many(
            [
                *[NewTask("echo", n, queue="charts") for n in range(3)],
                NewTask("fail", {"times": 1}, queue="charts", max_retries=1),
                NewTask("fail", None, queue="charts", max_retries=0),
            ]
        )
    )
    for task in tasks:
        redis.run(redis.client.wait(task.id, timeout=20))


def row_of(page: str, queue: str) -> str:
    found = re.search(rf'<tr data-queue="{queue}">.*?</tr>', page, re.DOTALL)
    assert found is not None, f"no row for {queue}"
    return found.group(0)


def test_the_overview_charts_each_queue_s_last_hour(ui_server: LiveServer, redis: Redis) -> None:
    finish_some(redis)
    redis.run(redis.client.enqueue("echo", None, queue="idle", delay=3600))
    with signed_in(ui_server) as http:
        page = http.get("/ui").text
    row = row_of(page, "charts")
    assert '<svg class="chart spark"' in row
    assert 'aria-label="charts, last hour: 4 succeeded, 1 failed; at most' in row
    assert "<title>charts, last hour: 4 succeeded, 1 failed; at most" in row
    assert 'data-succeeded="4" data-failed="1"' in row
    assert '<path class="ok"' in row
    assert '<path class="bad"' in row
    idle = row_of(page, "idle")
    assert 'aria-label="idle, last hour: 0 succeeded, 0 failed"' in idle
    assert "<path" not in idle  # no bar at all


def test_a_queue_page_charts_its_last_day(ui_server: LiveServer, redis: Redis) -> None:
    with signed_in(ui_server) as http:
        page = http.get("/ui/queues/charts").text
    chart = re.search(r'<figure class="throughput-day".*?</figure>', page, re.DOTALL)
    assert chart is not None
    figure = chart.group(0)
    assert 'viewBox="0 0 1440 ' in figure  # a unit a minute
    assert 'aria-label="Tasks finished per minute, last 24 hours: 4 succeeded, 1 failed' in figure
    ticks = re.findall(r"<text[^>]*>([^<]+)</text>", figure)
    assert ticks == [f"{h} h ago" for h in range(24, 0, -3)] + ["now"]
    assert len(re.findall(r'<line class="tick"', figure)) == 25  # every hour
    assert '<time datetime="' in figure  # the first minute, shown in the viewer's zone


def test_the_overview_shows_redis_memory(ui_server: LiveServer, redis: Redis) -> None:
    (memory,) = redis.run(redis.client.memory())
    with signed_in(ui_server) as http:
        page = http.get("/ui").text
    line = re.search(r'<p id="memory">.*?</p>', page, re.DOTALL)
    assert line is not None
    used = re.search(r'data-memory="(\d+)">([^<]+)</span> used', line.group(0))
    assert used is not None
    assert abs(int(used.group(1)) - memory.used) < 10 * 1024 * 1024
    assert re.fullmatch(r"[\d.]+ (Bytes|KiB|MiB|GiB)", used.group(2))
    assert "no <code>maxmemory</code> limit" in line.group(0)


async def configure(redis: Redis, settings: dict[str, str]) -> None:
    for name, value in settings.items():
        await redis.client.store.redis.config_set(name, value)


def test_the_memory_line_gives_the_limit_and_warns_of_eviction(
    ui_server: LiveServer, redis: Redis
) -> None:
    redis.run(configure(redis, {"maxmemory": str(1 << 30), "maxmemory-policy": "allkeys-lru"}))
    try:
        (memory,) = redis.run(redis.client.memory())
        assert (memory.limit, memory.policy) == (1 << 30, "allkeys-lru")
        with signed_in(ui_server) as http:
            page = http.get("/ui").text
    finally:
        redis.run(configure(redis, {"maxmemory-policy": "noeviction", "maxmemory": "0"}))
    line = re.search(r'<p id="memory">.*?</p>', page, re.DOTALL)
    assert line is not None
    assert "used of 1.0 GiB (<code>maxmemory</code>" in line.group(0)
    assert "Redis evicts keys (<code>allkeys-lru</code>)" in line.group(0)
