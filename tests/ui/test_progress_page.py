"""The task page's progress bar and log tail, live over the page's socket (the system's
Chromium, offline; the demo type ``steps`` reports progress and logs a line a step)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from e2e.live import API_KEY, LiveServer
from ui.browser import Offline, offline_page
from ui.conftest import Redis
from ui.test_browser import enqueue_over_http

SHOWN = """() => [
  document.getElementById("progress-bar").value,
  document.getElementById("progress-text").textContent,
  document.getElementById("progress-message").textContent,
  [...document.querySelectorAll("#log li .msg")].map((m) => m.textContent),
]"""


@pytest.fixture
def signed_in(browser: Browser, ui_server: LiveServer) -> Iterator[Offline]:
    with offline_page(browser) as page:
        page.sign_in(ui_server, API_KEY)
        yield page


def test_the_task_page_shows_progress_and_log_lines_live(
    signed_in: Offline, ui_server: LiveServer, redis: Redis
) -> None:
    body: dict[str, object] = {"type": "steps", "payload": {"steps": 8, "seconds": 0.4}}
    task_id = enqueue_over_http(ui_server, body)
    page = signed_in.page
    page.goto(f"{ui_server.url}/ui/tasks/{task_id}")
    signed_in.live()
    loaded = len(signed_in.requests)
    # Over the socket while the task runs: the bar, its message and new lines.
    expect(page.locator("#progress-message")).to_have_text(re.compile(r"^step [2-6] of 8$"))
    bar, text, message, lines = page.evaluate(SHOWN)  # one moment of the page
    step = int(message.split()[1])
    assert (bar, text) == (pytest.approx(step / 8), f"{round(step / 8 * 100)}%")
    assert lines[0].startswith("starting 8 steps")
    assert all(line.startswith("step ") for line in lines[1:])
    expect(page.locator("#log li").first.locator(".level")).to_have_text("INFO")
    expect(page.locator("#log li", has_text="step 2 done")).to_have_count(1)
    expect(page.locator("#task .status")).to_contain_text("active")
    assert signed_in.requests[loaded:] == [], "the page made HTTP requests while live"
    # Progress and lines are no steps of the timeline.
    expect(page.locator("#timeline")).not_to_contain_text("progress")
    redis.run(redis.client.wait(task_id, timeout=20))
    # Finished, the page is drawn again by the server: the same bar and every line.
    expect(page.locator("#task .status")).to_contain_text("succeeded", timeout=5000)
    expect(page.locator("#progress-text")).to_have_text("100%")
    expect(page.locator("#progress-message")).to_have_text("step 8 of 8")
    expect(page.locator("#log li")).to_have_count(9)
    expect(page.locator("#timeline li")).to_have_count(3)  # queued, active, succeeded
    signed_in.assert_clean()


def test_a_task_that_reports_nothing_says_so(
    signed_in: Offline, ui_server: LiveServer, redis: Redis
) -> None:
    task = redis.run(redis.client.enqueue("echo", {"quiet": True}))
    redis.run(redis.client.wait(task.id, timeout=10))
    page = signed_in.page
    page.goto(f"{ui_server.url}/ui/tasks/{task.id}")
    expect(page.locator("#progress-text")).to_have_text("Not reported.")
    expect(page.locator("#log")).to_contain_text("No lines logged.")
    signed_in.assert_clean()
