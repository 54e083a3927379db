"""The workflow page in a real browser: the tree of steps with each member's status (and
its queue, when not the workflow's), kept live over its socket as members run (no request
after the page loaded); a failed member's Retry button re-opens its workflow, whose
callback then runs once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from arqd.core.task import NewTask
from arqd.core.workflows import group
from conftest import task_events
from e2e.flaky_tasks import flaky_registry
from e2e.live import API_KEY, LiveServer
from ui.browser import Offline, offline_page
from ui.conftest import Redis, signed_in


@pytest.fixture
def browsing(browser: Browser, ui_server: LiveServer) -> Iterator[Offline]:
    with offline_page(browser) as page:
        page.sign_in(ui_server, API_KEY)
        yield page


def test_the_workflow_page_shows_the_tree_live(
    browsing: Offline, ui_server: LiveServer, redis: Redis
) -> None:
    flow = group(
        [NewTask("echo", 1), NewTask("echo", 2, queue="live-elsewhere")],
        on_failure="fail",
        callback=NewTask("echo"),
    )
    state = redis.run(redis.client.workflows.start(flow, queue="live-flows"))
    page = browsing.page
    page.goto(f"{ui_server.url}/ui/workflows/{state.id}")
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    loaded = len(browsing.requests)
    first = page.locator(f'li[data-member="{state.id}.0.0"]')
    expect(first).to_contain_text("queued")
    expect(page.locator(f'li[data-member="{state.id}.1.0"]')).to_contain_text("pending")
    expect(page.locator(f'li[data-member="{state.id}.0.1"]')).to_contain_text("on live-elsewhere")
    redis.start_worker(["live-flows", "live-elsewhere"])
    expect(page.locator("#wf-status")).to_contain_text("succeeded", timeout=10_000)
    expect(page.locator(f'li[data-member="{state.id}.1.0"]')).to_contain_text("succeeded")
    assert browsing.requests[loaded:] == []  # the socket brought every change
    browsing.assert_clean()


def test_an_unknown_workflow_is_a_404_page(ui_server: LiveServer) -> None:
    with signed_in(ui_server) as http:
        assert http.get("/ui/workflows/no-such-flow").status_code == 404


def test_the_retry_button_of_a_failed_member_reopens_its_workflow(
    browsing: Offline, ui_server: LiveServer, redis: Redis
) -> None:
    members = [NewTask("echo", 1), NewTask("flaky", 2)]
    flow = group(members, on_failure="fail", callback=NewTask("echo"))
    state = redis.run(redis.client.workflows.start(flow, queue="retried-flows"))
    member, callback = f"{state.id}.0.1", f"{state.id}.1.0"
    redis.start_worker(["retried-flows"], flaky_registry())
    page = browsing.page
    page.goto(f"{ui_server.url}/ui/workflows/{state.id}")
    browsing.live()
    expect(page.locator("#wf-status")).to_contain_text("failed", timeout=10_000)
    expect(page.locator(f'li[data-member="{callback}"]')).to_contain_text("pending")

    page.locator(f'li[data-member="{member}"] a').click()
    expect(page.locator("h1")).to_have_text(member)
    expect(page.locator("#task .status")).to_contain_text("failed")
    page.get_by_role("button", name="Retry").click()

    expect(page).to_have_url(f"{ui_server.url}/ui/tasks/{member}")
    expect(page.locator("#task .status")).to_contain_text("succeeded", timeout=10_000)
    page.goto(f"{ui_server.url}/ui/workflows/{state.id}")
    expect(page.locator("#wf-status")).to_contain_text("succeeded", timeout=10_000)
    expect(page.locator(f'li[data-member="{callback}"]')).to_contain_text("succeeded")
    done = redis.run(redis.client.get(callback))
    assert done is not None
    assert done.result == [1, 2]
    events = redis.run(task_events(redis.client.store, "retried-flows", callback))
    assert events.count("queued") == 1  # the callback ran once
    (audited, *_) = redis.run(redis.client.audit_log(5))
    assert (audited.action, audited.target) == ("retry", f"task:retried-flows:{member}")
    browsing.assert_clean()
