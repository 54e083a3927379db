"""The dashboard in a real browser (the system's Chromium, offline): every page and
action, live updates over the WebSocket, and each action's effect checked in Redis.

Needs Chromium at /usr/bin/chromium (Debian's ``chromium``), driven by playwright; the
browser is never downloaded (no ``playwright install``). One browser and one server per
module."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, expect

from arqd.client import NewTask
from arqd.resilience.breaker import State
from e2e.live import API_KEY, AUTH, LiveServer
from ui.browser import Offline, offline_page
from ui.conftest import READ_ONLY_KEY, Redis

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def signed_in(browser: Browser, ui_server: LiveServer) -> Iterator[Offline]:
    with offline_page(browser) as page:
        page.sign_in(ui_server, API_KEY)
        yield page


def enqueue_over_http(server: LiveServer, body: dict[str, object]) -> str:
    """What curl would do: POST /tasks with a key."""
    answer = httpx.post(f"{server.url}/tasks", json=body, headers=AUTH, timeout=10)
    assert answer.status_code == 201, answer.text
    task_id: str = answer.json()["id"]
    return task_id


def test_the_overview_shows_queues_workers_and_open_breakers(
    signed_in: Offline, ui_server: LiveServer, redis: Redis
) -> None:
    task = redis.run(redis.client.enqueue("echo", {"hello": "overview"}, queue="default"))
    redis.run(redis.client.wait(task.id, timeout=10))
    redis.run(redis.client.store.limits.breaker("ov-dependency", "fail", 1, 60_000))
    page = signed_in.page
    page.goto(f"{ui_server.url}/ui")
    row = page.locator('#queues tr[data-queue="default"]')
    (stats,) = redis.run(redis.client.stats("default"))
    expect(row.locator('[data-count="succeeded"]')).to_have_text(str(stats.succeeded))
    expect(page.get_by_text("ov-dependency")).to_be_visible()
    (worker,) = redis.run(redis.client.workers())
    expect(page.get_by_text(worker.id)).to_be_visible()
    # Where the queue lives, and what arqd runs on.
    expect(row.locator("td").last).to_have_text(str(redis.client.slot("default")))
    topology = redis.run(redis.client.topology())
    expect(page.locator("#redis")).to_contain_text(f"One server: {topology.master}")
    expect(page.locator("#redis")).to_contain_text("enqueues do not wait for replicas")
    # Times are shown in the viewer's zone, with UTC on hover.
    expect(page.locator("time").first).to_have_attribute("title", re.compile(r"^\d{4}-.* UTC$"))
    signed_in.assert_clean()


def test_a_task_enqueued_over_http_appears_live_and_turns_succeeded(
    signed_in: Offline, ui_server: LiveServer, redis: Redis
) -> None:
    page = signed_in.page
    page.goto(f"{ui_server.url}/ui/queues/default")
    signed_in.live()
    loaded = len(signed_in.requests)
    sent = time.monotonic()
    task_id = enqueue_over_http(
        ui_server, {"type": "sleep", "payload": {"seconds": 0.3}, "queue": "default"}
    )
    row = page.locator(f'tr[data-task="{task_id}"]')
    expect(row).to_be_visible(timeout=1000)
    assert time.monotonic() - sent < 1.5
    finished = redis.run(redis.client.wait(task_id, timeout=10))
    assert finished.status == "succeeded"
    expect(row.locator(".status")).to_contain_text("succeeded", timeout=1000)
    (stats,) = redis.run(redis.client.stats("default"))
    succeeded = page.locator('.tabs [data-count="succeeded"]')
    expect(succeeded).to_have_text(str(stats.succeeded), timeout=1000)
    assert signed_in.requests[loaded:] == [], "the page made HTTP requests while live"
    signed_in.assert_clean()


def test_a_dropped_socket_resumes_from_its_last_event_and_counts_match_a_reload(
    signed_in: Offline, ui_server: LiveServer, redis: Redis
) -> None:
    page = signed_in.page
    page.goto(f"{ui_server.url}/ui/queues/default")
    signed_in.live()
    first = enqueue_over_http(ui_server, {"type": "echo", "queue": "default"})
    expect(page.locator(f'tr[data-task="{first}"] .status')).to_contain_text("succeeded")
    page.evaluate("() => { window.arqdLive.delay = 1500; window.arqdLive.socket.close(); }")
    expect(page.locator("#live")).to_have_attribute("data-state", "reconnecting")
    missed = enqueue_over_http(ui_server, {"type": "echo", "queue": "default"})
    redis.run(redis.client.wait(missed, timeout=10))
    signed_in.live()
    expect(page.locator(f'tr[data-task="{missed}"] .status')).to_contain_text("succeeded")
    shown = page.locator(".tabs [data-count]").all_inner_texts()
    page.reload()
    expect(page.locator(".tabs [data-count]")).to_have_text(shown)
    (stats,) = redis.run(redis.client.stats("default"))
    assert shown == [
        str(getattr(stats, s))
        for s in ("scheduled", "queued", "active", "succeeded", "failed", "cancelled", "expired")
    ]
    signed_in.assert_clean()


def test_the_task_page_shows_payload_result_timeline_and_trace(
    signed_in: Offline, ui_server: LiveServer, redis: Redis
) -> None:
    traced = NewTask(
        "echo", {"answer": 42}, trace_context={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}
    )
    task = redis.run(redis.client.enqueue_task(traced))
    redis.run(redis.client.wait(task.id, timeout=10))
    page = signed_in.page
    page.goto(f"{ui_server.url}/ui/tasks/{task.id}")
    expect(page.locator("#task .status")).to_contain_text("succeeded")
    expect(page.locator("section", has_text="Payload").locator("pre")).to_contain_text(
        '"answer": 42'
    )
    expect(page.locator("section", has_text="Result").locator("pre")).to_contain_text("42")
    expect(page.locator("#timeline li")).to_have_count(3)  # queued, active, succeeded
    expect(page.locator("#timeline")).to_contain_text("active")
    expect(page.get_by_text(TRACE_ID)).to_be_visible()
    signed_in.assert_clean()


def test_retry_from_the_task_page_runs_a_failed_task_again(
    signed_in: Offline, ui_server: LiveServer, redis: Redis
) -> None:
    task = redis.run(redis.client.enqueue("fail", None, max_retries=0))
    assert redis.run(redis.client.wait(task.id, timeout=10)).status == "failed"
    page = signed_in.page
    page.goto(f"{ui_server.url}/ui/tasks/{task.id}")
    expect(page.locator(".error").first).to_contain_text("DemoFailure")
    expect(page.locator("pre.trace")).to_contain_text("Traceback")
    with page.expect_navigation():
        page.get_by_role("button", name="Retry").click()
    again = redis.run(redis.client.wait(task.id, timeout=10))
    history = [e.fields[b"event"] for e in redis.run(redis.client.task_history(again))]
    assert history == [b"queued", b"active", b"failed", b"queued", b"active", b"failed"]
    expect(page.locator("#timeline li")).to_have_count(6)
    signed_in.assert_clean()


def test_cancel_from_the_task_page(signed_in: Offline, ui_server: LiveServer, redis: Redis) -> None:
    task = redis.run(redis.client.enqueue("echo", None, delay=600))
    page = signed_in.page
    page.goto(f"{ui_server.url}/ui/tasks/{task.id}")
    with page.expect_navigation():
        page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#task .status")).to_contain_text("cancelled")
    cancelled = redis.run(redis.client.get(task.id))
    assert cancelled is not None
    assert cancelled.status == "cancelled"
    signed_in.assert_clean()


def test_enqueue_a_copy_shows_field_errors_inline_then_enqueues(
    browser: Browser, ui_server: LiveServer, redis: Redis
) -> None:
    task = redis.run(redis.client.enqueue("echo", {"n": 1}, queue="copies", delay=600))
    with offline_page(browser) as signed_in:
        signed_in.sign_in(ui_server, API_KEY)
        page = signed_in.page
        page.goto(f"{ui_server.url}/ui/tasks/{task.id}")
        page.fill("#payload", '{"n": ')
        page.fill("#priority", "high")
        page.get_by_role("button", name="Enqueue the copy").click()
        expect(page.locator("#payload-error")).to_contain_text("not valid JSON")
        expect(page.locator("#priority-error")).to_contain_text("whole number")
        expect(page.locator("#payload")).to_have_value('{"n": ')
        assert signed_in.failed == [f"{ui_server.url}/ui/tasks/{task.id}/copy: HTTP 422"]
        expected_error = "the server responded with a status of 422"
        assert [e for e in signed_in.errors if expected_error not in e] == []
        signed_in.failed.clear()
        signed_in.errors.clear()
        page.fill("#payload", '{"n": 2}')
        page.fill("#priority", "5")
        page.get_by_role("button", name="Enqueue the copy").click()
        expect(page).not_to_have_url(f"{ui_server.url}/ui/tasks/{task.id}/copy")
        copy_id = page.url.rsplit("/", 1)[1]
        assert copy_id != task.id
        copy = redis.run(redis.client.get(copy_id))
        assert copy is not None
        assert (copy.type, copy.queue, copy.payload, copy.priority) == (
            "echo",
            "copies",
            {"n": 2},
            5,
        )
        signed_in.assert_clean()


def test_reset_a_breaker_and_see_it_in_the_audit(
    signed_in: Offline, ui_server: LiveServer, redis: Redis
) -> None:
    redis.run(redis.client.store.limits.breaker("payments", "fail", 1, 60_000))
    page = signed_in.page
    page.goto(f"{ui_server.url}/ui/breakers")
    row = page.locator('tr[data-breaker="payments"]')
    expect(row).to_contain_text("open")
    row.get_by_role("button", name="Reset").click()
    expect(page.locator('tr[data-breaker="payments"]')).to_contain_text("closed")
    breaker = redis.run(redis.client.breaker("payments"))
    assert breaker is not None
    assert breaker.state is State.CLOSED
    page.goto(f"{ui_server.url}/ui/audit")
    expect(page.locator("#audit tbody tr").first).to_contain_text("breaker:payments")
    expect(page.locator("#audit tbody tr").first).to_contain_text("reset breaker")
    signed_in.assert_clean()


def test_the_workers_page_lists_the_live_workers(
    signed_in: Offline, ui_server: LiveServer, redis: Redis
) -> None:
    page = signed_in.page
    page.goto(f"{ui_server.url}/ui/workers")
    for worker in redis.run(redis.client.workers()):
        expect(page.locator(f'tr[id="{worker.id}"]')).to_contain_text(str(worker.details["pid"]))
    signed_in.assert_clean()


def test_jump_to_a_task_filter_by_type_and_search_text(
    signed_in: Offline, ui_server: LiveServer, redis: Redis
) -> None:
    wanted = redis.run(redis.client.enqueue("echo", 1, queue="jumps", delay=600))
    other = redis.run(redis.client.enqueue("sleep", None, queue="jumps", delay=600))
    page = signed_in.page
    page.goto(f"{ui_server.url}/ui/queues/jumps?status=scheduled")
    expect(page.locator("#tasks tbody tr")).to_have_count(2)
    page.fill("#type", "echo")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#tasks tbody tr")).to_have_count(1)
    expect(page.locator(f'tr[data-task="{wanted.id}"]')).to_be_visible()
    page.fill("#type", "")
    page.fill("#q", "null")  # the other's payload, as JSON
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#tasks tbody tr")).to_have_count(1)
    expect(page.locator(f'tr[data-task="{other.id}"]')).to_be_visible()
    page.fill("#find", other.id)
    page.get_by_role("button", name="Go").click()
    expect(page.locator("h1")).to_have_text(other.id)
    signed_in.assert_clean()


def test_cancel_every_scheduled_task_of_a_type(
    signed_in: Offline, ui_server: LiveServer, redis: Redis
) -> None:
    naps = redis.run(
        redis.client.enqueue_many([NewTask("sleep", None, delay=600) for _ in range(5)])
    )
    kept = redis.run(redis.client.enqueue("echo", None, delay=600))
    page = signed_in.page
    page.goto(f"{ui_server.url}/ui/queues/default?status=scheduled&type=sleep")
    expect(page.locator("#tasks tbody tr")).to_have_count(5)
    page.get_by_role("button", name="Cancel every scheduled task of type sleep").click()
    expect(page.locator("h1")).to_have_text("Cancelled 5 tasks")
    after = [redis.run(redis.client.get(t.id)) for t in [*naps, kept]]
    assert [t.status if t else None for t in after] == ["cancelled"] * 5 + ["scheduled"]
    signed_in.assert_clean()


def test_a_read_only_key_sees_no_action(
    browser: Browser, ui_server: LiveServer, redis: Redis
) -> None:
    task = redis.run(redis.client.enqueue("fail", None, max_retries=0))
    redis.run(redis.client.wait(task.id, timeout=10))
    redis.run(redis.client.store.limits.breaker("readonly-dep", "fail", 1, 60_000))
    with offline_page(browser) as viewer:
        viewer.sign_in(ui_server, READ_ONLY_KEY)
        page = viewer.page
        page.goto(f"{ui_server.url}/ui/tasks/{task.id}")
        expect(page.get_by_text("Read-only:")).to_be_visible()
        expect(page.locator("main button")).to_have_count(0)
        page.goto(f"{ui_server.url}/ui/breakers")
        expect(page.get_by_text("readonly-dep")).to_be_visible()
        expect(page.locator("main button")).to_have_count(0)
        page.goto(f"{ui_server.url}/ui/queues/default?status=failed")
        expect(page.locator(f'tr[data-task="{task.id}"]')).to_be_visible()
        expect(page.locator("main form[method=post]")).to_have_count(0)
        viewer.assert_clean()


def test_a_form_posted_from_another_local_origin_is_refused(
    signed_in: Offline, ui_server: LiveServer, redis: Redis
) -> None:
    redis.run(redis.client.store.limits.breaker("csrf-target", "fail", 1, 60_000))
    page = signed_in.page
    evil = "http://localhost:1/evil"  # another origin of this machine
    form = (
        f'<form method="post" action="{ui_server.url}/ui/breakers/csrf-target/reset">'
        '<input name="csrf" value="guessed"></form>'
        "<script>document.forms[0].submit()</script>"
    )
    page.route(evil, lambda route: route.fulfill(body=form, content_type="text/html"))
    page.goto(evil)
    expect(page.locator(".error")).to_contain_text("CSRF")
    breaker = redis.run(redis.client.breaker("csrf-target"))
    assert breaker is not None
    assert breaker.state is State.OPEN


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (390, 844)])
def test_pages_fit_the_screen(
    browser: Browser, ui_server: LiveServer, redis: Redis, width: int, height: int
) -> None:
    task = redis.run(redis.client.enqueue("echo", {"a": "b" * 40}, queue="fit", delay=600))
    with offline_page(browser, width=width, height=height) as viewer:
        viewer.sign_in(ui_server, API_KEY)
        for path in ("/ui", "/ui/queues/fit", f"/ui/tasks/{task.id}", "/ui/workers"):
            viewer.page.goto(f"{ui_server.url}{path}")
            overflow = viewer.page.evaluate(
                "() => document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 0, f"{path} is {overflow}px wider than {width}px"
        viewer.assert_clean()


def test_run_a_scheduled_task_now_from_the_task_page(
    signed_in: Offline, ui_server: LiveServer, redis: Redis
) -> None:
    task = redis.run(redis.client.enqueue("echo", "now", delay=3600))
    page = signed_in.page
    page.goto(f"{ui_server.url}/ui/tasks/{task.id}")
    with page.expect_navigation():
        page.get_by_role("button", name="Run now").click()
    expect(page.locator("#task .status")).to_contain_text("succeeded", timeout=5000)
    ran = redis.run(redis.client.get(task.id))
    assert ran is not None
    assert (ran.status, ran.result) == ("succeeded", "now")
    assert redis.run(redis.client.audit_log())[0].action == "run_now"
    signed_in.assert_clean()
