"""The Schedules page in a real browser: each schedule's next and last run, and pause,
resume, run now and edit, each checked in Redis; read-only keys see no action, and a
wrong edit comes back beside the form."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from arqd.core.schedules import Schedule
from e2e.live import API_KEY, LiveServer
from ui.browser import Offline, offline_page
from ui.conftest import READ_ONLY_KEY, Redis, signed_in


@pytest.fixture
def page_of(browser: Browser, ui_server: LiveServer) -> Iterator[Offline]:
    with offline_page(browser) as page:
        page.sign_in(ui_server, API_KEY)
        yield page


@pytest.fixture
def nightly(redis: Redis) -> Iterator[str]:
    schedule = Schedule("ui-nightly", "echo", cron="30 2 * * *", tz="Europe/Paris", payload=1)
    redis.run(redis.client.schedules.upsert(schedule))
    yield schedule.name
    redis.run(redis.client.schedules.delete(schedule.name))


def test_pause_resume_and_run_now_from_the_list(
    page_of: Offline, ui_server: LiveServer, redis: Redis, nightly: str
) -> None:
    page = page_of.page
    page.goto(f"{ui_server.url}/ui/schedules")
    row = page.locator(f'#schedules tr[data-schedule="{nightly}"]')
    expect(row).to_contain_text("30 2 * * *")
    expect(row.locator("td.next time")).to_have_count(1)
    row.get_by_placeholder("reason").fill("holiday")
    with page.expect_navigation():
        row.get_by_role("button", name="Pause").click()
    expect(row.locator("td.next")).to_contain_text("paused holiday")
    state = redis.run(redis.client.schedules.get(nightly))
    assert state.paused
    assert state.reason == "holiday"
    with page.expect_navigation():
        row.get_by_role("button", name="Resume").click()
    assert not redis.run(redis.client.schedules.get(nightly)).paused
    with page.expect_navigation():
        row.get_by_role("button", name="Run now").click()
    assert f"/ui/tasks/s:{nightly}:now:" in page.url
    audit = [e.action for e in redis.run(redis.client.audit_log(10))]
    assert {"pause_schedule", "resume_schedule", "trigger_schedule"} <= set(audit)
    page_of.assert_clean()


def test_edit_changes_the_schedule_and_a_wrong_value_is_shown_by_its_field(
    page_of: Offline, ui_server: LiveServer, redis: Redis, nightly: str
) -> None:
    page = page_of.page
    page.goto(f"{ui_server.url}/ui/schedules/{nightly}")
    form = page.locator("#edit")
    form.get_by_label("Cron").fill("")
    form.get_by_label("or every (seconds)").fill("90")
    form.get_by_label("Payload (JSON)").fill('{"n": 2}')
    with page.expect_navigation():
        form.get_by_role("button", name="Save").click()
    schedule = redis.run(redis.client.schedules.get(nightly)).schedule
    assert (schedule.cron, schedule.every, schedule.payload) == (None, 90, {"n": 2})
    page_of.assert_clean()
    form.get_by_label("Time zone").fill("Mars/Olympus")
    with page.expect_navigation():
        form.get_by_role("button", name="Save").click()
    expect(page.locator("#form-error")).to_contain_text("unknown time zone 'Mars/Olympus'")
    assert redis.run(redis.client.schedules.get(nightly)).schedule.tz == "Europe/Paris"
    assert not page_of.blocked


def test_a_read_only_key_sees_schedules_but_no_action(ui_server: LiveServer, nightly: str) -> None:
    with signed_in(ui_server, READ_ONLY_KEY) as http:
        listed = http.get("/ui/schedules")
        assert nightly in listed.text
        assert "/pause" not in listed.text
        assert http.get("/ui/schedules/none").status_code == 404
