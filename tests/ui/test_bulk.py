"""Bulk actions: retry the failed tasks of a type, cancel the scheduled ones; the count is
what changed in Redis, and the same form sent twice does not act twice."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from arqd.client import NewTask
from arqd.core.settings import Settings
from arqd.core.task import Task, TaskStatus
from arqd.ui.bulk import eligible
from conftest import RedisServer
from e2e.live import LiveServer, settings_for
from ui.conftest import READ_ONLY_KEY, Redis, csrf_of, signed_in


@pytest.fixture(scope="module")
def ui_settings(redis_server: RedisServer) -> Settings:
    """No breaker opens here: the failing tasks must fail again after a retry."""
    return settings_for(
        redis_server.url, read_only_keys=READ_ONLY_KEY, circuit_breaker_threshold=10_000
    )


COUNT = re.compile(r'<span id="bulk-count">(\d+)</span>')
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_only_tasks_in_the_state_when_the_page_was_shown_are_eligible() -> None:
    earlier, later = NOW - timedelta(seconds=1), NOW + timedelta(seconds=1)
    failed = Task("a", "t", "q", TaskStatus.FAILED, finished_at=earlier)
    assert eligible(failed, "retry", NOW)
    assert not eligible(Task("a", "t", "q", TaskStatus.FAILED, finished_at=later), "retry", NOW)
    assert not eligible(Task("a", "t", "q", TaskStatus.QUEUED, created_at=earlier), "retry", NOW)
    assert eligible(Task("a", "t", "q", TaskStatus.SCHEDULED, created_at=earlier), "cancel", NOW)
    assert eligible(Task("a", "t", "q", TaskStatus.QUEUED, created_at=earlier), "cancel", NOW)
    assert not eligible(Task("a", "t", "q", TaskStatus.QUEUED, created_at=later), "cancel", NOW)
    assert not eligible(failed, "cancel", NOW)


def bulk(http: httpx.Client, page: str, form: dict[str, str]) -> int:
    shown = http.get(page)
    before = re.search(r'name="before" value="(\d+)"', shown.text)
    assert before is not None, "the page offers no bulk action"
    fields = {"csrf": csrf_of(shown), "before": before.group(1), **form}
    answer = http.post("/ui/queues/default/bulk", data=fields)
    assert answer.status_code == 200, answer.text
    found = COUNT.search(answer.text)
    assert found is not None
    return int(found.group(1))


def queued_events(redis: Redis, task: Task) -> int:
    history = redis.run(redis.client.task_history(task))
    return sum(1 for event in history if event.fields[b"event"] == b"queued")


def test_retry_every_failed_task_of_a_type_once_even_when_sent_twice(
    ui_server: LiveServer, redis: Redis
) -> None:
    failing = redis.run(
        redis.client.enqueue_many([NewTask("fail", None, max_retries=0) for _ in range(30)])
    )
    other = redis.run(redis.client.enqueue("fail", None, max_retries=0, queue="default"))
    for task in [*failing, other]:
        redis.run(redis.client.wait(task.id, timeout=10))
    time.sleep(0.01)  # the page is shown after they failed (ms resolution)
    with signed_in(ui_server) as http:
        page = "/ui/queues/default?status=failed&type=fail"
        shown = http.get(page)
        assert "Retry every failed task of type fail" in shown.text
        fields = {"operation": "retry", "status": "failed", "type": "fail"}
        first = bulk(http, page, fields)
        for task in [*failing, other]:
            redis.run(redis.client.wait(task.id, timeout=10))  # retried, and failed again
        before = re.search(r'name="before" value="(\d+)"', shown.text)
        assert before is not None
        again = http.post(
            "/ui/queues/default/bulk",
            data={"csrf": csrf_of(shown), "before": before.group(1), **fields},
        )
    assert first == 31  # every failed "fail" task of the queue when the page was shown
    assert COUNT.findall(again.text) == ["0"]
    for task in [*failing, other]:
        assert queued_events(redis, task) == 2  # enqueued, retried once: not twice
    entries = redis.run(redis.client.audit_log(5))
    assert ("bulk_retry", "queue:default:failed:fail", first) in [
        (e.action, e.target, e.count) for e in entries
    ]


def test_cancel_the_scheduled_tasks_of_one_type(ui_server: LiveServer, redis: Redis) -> None:
    echoes = [NewTask("echo", n, queue="default", delay=600) for n in range(40)]
    sleeps = [NewTask("sleep", None, queue="default", delay=600) for _ in range(5)]
    redis.run(redis.client.enqueue_many([*echoes, *sleeps]))
    time.sleep(0.01)
    with signed_in(ui_server) as http:
        page = "/ui/queues/default?status=scheduled&type=echo"
        count = bulk(http, page, {"operation": "cancel", "status": "scheduled", "type": "echo"})
    statuses = {t.id: redis.run(redis.client.get(t.id)) for t in [*echoes, *sleeps]}
    cancelled = [i for i, t in statuses.items() if t is not None and t.status == "cancelled"]
    assert {t.id for t in echoes} <= set(cancelled)
    assert not {t.id for t in sleeps} & set(cancelled)
    assert count == len(cancelled)


def test_a_bulk_form_that_names_no_operation_is_refused(ui_server: LiveServer) -> None:
    with signed_in(ui_server) as http:
        token = csrf_of(http.get("/ui"))
        for form in (
            {"operation": "purge", "status": "failed", "before": "1"},
            {"operation": "delete", "status": "queued", "before": "1"},
            {"operation": "retry", "status": "scheduled", "before": "1"},
            {"operation": "retry", "status": "failed", "before": "soon"},
        ):
            answer = http.post("/ui/queues/default/bulk", data={"csrf": token, **form})
            assert answer.status_code == 409, form


def test_delete_every_succeeded_task_of_a_type_once_even_when_sent_twice(
    ui_server: LiveServer, redis: Redis
) -> None:
    echoed = redis.run(redis.client.enqueue_many([NewTask("echo", n) for n in range(30)]))
    other = redis.run(redis.client.enqueue("sleep", {"seconds": 0}))  # another type
    for task in [*echoed, other]:
        redis.run(redis.client.wait(task.id, timeout=10))
    time.sleep(0.01)  # the page is shown after they succeeded (ms resolution)
    listed = redis.run(redis.client.list_tasks("default", "succeeded", "echo", limit=1000))
    with signed_in(ui_server) as http:
        page = "/ui/queues/default?status=succeeded&type=echo"
        assert "Delete every succeeded task of type echo" in http.get(page).text
        fields = {"operation": "delete", "status": "succeeded", "type": "echo"}
        first = bulk(http, page, fields)
        second = bulk(http, page, fields)
    assert first == len(listed.tasks) >= 30  # what changed in Redis
    assert second == 0
    assert all(redis.run(redis.client.get(task.id)) is None for task in echoed)
    assert redis.run(redis.client.get(other.id)) is not None
    assert redis.run(redis.client.audit_log())[0].action == "bulk_delete"
