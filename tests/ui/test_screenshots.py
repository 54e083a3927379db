"""Screenshots of the dashboard for the README and docs/: the overview, a queue, a task,
the workers and the schedules pages, taken in the system's Chromium at 1280x800 from a
live server with a few queues of tasks and schedules. Run with ``UPDATE_SCREENSHOTS=1`` to
write them to docs/; without it they go to a temporary folder, so the test still proves
they can be made."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from arqd.client import NewTask
from arqd.core.schedules import Schedule
from e2e.live import API_KEY, LiveServer
from ui.browser import offline_page
from ui.conftest import Redis

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = ("overview", "queue", "task", "workers", "schedules")


def fill(redis: Redis) -> str:
    """Tasks on three queues, finished in every way; the id of a failed one."""
    client = redis.client
    redis.start_worker(["emails", "reports"])
    done = [
        *[NewTask("echo", {"to": f"user{n}@example.com"}, queue="emails") for n in range(12)],
        *[NewTask("sleep", {"seconds": 0.01}, queue="reports") for _ in range(5)],
        NewTask("fail", {"times": 1}, queue="reports", max_retries=0),
        NewTask("fail", {"times": 1}, queue="emails", max_retries=0),
    ]
    later = [NewTask("echo", {"digest": "weekly"}, queue="reports", delay=3600) for _ in range(3)]
    tasks = redis.run(client.enqueue_many([*done, *later, NewTask("echo", None, delay=3600)]))
    for task in tasks[: len(done)]:
        redis.run(client.wait(task.id, timeout=20))
    redis.run(client.store.limits.breaker("smtp", "fail", 1, 600_000))
    schedules = [
        Schedule("nightly-report", "echo", cron="30 2 * * *", tz="Europe/Paris", queue="reports"),
        Schedule("digest", "echo", cron="0 8 * * MON", tz="America/New_York", queue="emails"),
        Schedule("sync-prices", "echo", every=300, queue="reports", overlap=False),
    ]
    for schedule in schedules:
        redis.run(client.schedules.upsert(schedule))
    redis.run(client.schedules.pause("digest", "vendor outage"))
    return tasks[len(done) - 1].id


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_screenshots_of_five_pages(
    browser: Browser, ui_server: LiveServer, redis: Redis, tmp_path: Path
) -> None:
    out = DOCS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path
    failed_id = fill(redis)
    with offline_page(browser) as viewer:
        viewer.sign_in(ui_server, API_KEY)
        page = viewer.page
        shots = {
            "overview": "/ui",
            "queue": "/ui/queues/emails",
            "task": f"/ui/tasks/{failed_id}",
            "workers": "/ui/workers",
            "schedules": "/ui/schedules",
        }
        for name, path in shots.items():
            page.goto(f"{ui_server.url}{path}")
            if name not in ("workers", "schedules"):
                viewer.live()
            expect(page.locator("h1")).to_be_visible()
            page.screenshot(path=out / f"dashboard-{name}.png", full_page=name == "task")
        viewer.assert_clean()
    for name in PAGES:
        width, height = png_size(out / f"dashboard-{name}.png")
        assert width == 1280
        assert height >= 800


@pytest.mark.parametrize("name", PAGES)
def test_the_docs_hold_each_screenshot(name: str) -> None:
    assert png_size(DOCS / f"dashboard-{name}.png")[0] == 1280
