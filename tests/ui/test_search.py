"""Substring search over payloads and errors: bounded steps, each continuing from a
cursor, that together find exactly what one full scan finds, in under 2 s over 10,000."""

from __future__ import annotations

import re
import time

import httpx
import orjson
from hypothesis import given
from hypothesis import strategies as st

from arqd.client import NewTask
from arqd.core.task import ErrorInfo, Task, TaskStatus
from arqd.ui.search import matches
from e2e.live import LiveServer
from ui.conftest import Redis, signed_in

TASK_ROW = re.compile(r'<tr data-task="([^"]+)"')
NEXT_PAGE = re.compile(r'<a href="(\?[^"]+)" rel="next">')


def task(payload: object = None, error: ErrorInfo | None = None) -> Task:
    return Task("t", "echo", "q", TaskStatus.FAILED, payload=payload, error=error)


@given(st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=4), st.data())
def test_any_piece_of_the_payload_json_is_found_whatever_its_case(
    payload: dict[str, str], data: st.DataObject
) -> None:
    shown = orjson.dumps(payload).decode()
    start = data.draw(st.integers(0, len(shown) - 1))
    piece = shown[start : data.draw(st.integers(start + 1, len(shown)))]
    assert matches(task(payload), piece)
    assert matches(task(payload), piece.upper()) == (piece.upper().casefold() in shown.casefold())


def test_errors_are_searched_by_type_message_and_traceback() -> None:
    failed = task({"a": 1}, ErrorInfo("Timeout", "took 31 s", "Traceback: in fetch_page"))
    for needle in ("timeout", "31 S", "fetch_page", '"a":1'):
        assert matches(failed, needle)
    assert not matches(failed, "succeeded")
    assert not matches(task(None), "anything")


def follow(http: httpx.Client, first: str) -> tuple[list[str], int]:
    """Every task id the search pages list, following their links; and how many pages."""
    found: list[str] = []
    url: str | None = first
    pages = 0
    while url is not None:
        page = http.get(url).text
        pages += 1
        found += TASK_ROW.findall(page)
        following = NEXT_PAGE.search(page)
        url = f"/ui/queues/hay{following.group(1)}".replace("&amp;", "&") if following else None
    return found, pages


def test_a_search_over_10000_tasks_finds_exactly_what_a_full_scan_does_in_under_2_s(
    ui_server: LiveServer, redis: Redis
) -> None:
    tasks = [
        NewTask("echo", {"n": n, "word": "a Needle here" if n % 97 == 0 else "hay"}, queue="hay")
        for n in range(10_000)
    ]
    for start in range(0, len(tasks), 2000):
        batch = [
            NewTask(t.type, t.payload, queue="hay", delay=3600) for t in tasks[start : start + 2000]
        ]
        redis.run(redis.client.enqueue_many(batch))
    everything: list[Task] = []
    cursor: str | None = None
    while True:
        page = redis.run(redis.client.list_tasks("hay", "scheduled", None, cursor, 1000))
        everything += page.tasks
        if (cursor := page.next_cursor) is None:
            break
    assert len(everything) == 10_000
    expected = [t.id for t in everything if "needle" in orjson.dumps(t.payload).decode().lower()]
    assert len(expected) == 104
    with signed_in(ui_server) as http:
        started = time.monotonic()
        found, pages = follow(http, "/ui/queues/hay?status=scheduled&q=NEEDLE")
        took = time.monotonic() - started
    assert found == expected
    assert pages >= 2  # it pages: no one request reads the whole index
    assert took < 2.0


def test_a_search_finds_error_text_in_the_failed_index(ui_server: LiveServer, redis: Redis) -> None:
    failed = [redis.run(redis.client.enqueue("fail", None, max_retries=0)) for _ in range(3)]
    fine = redis.run(redis.client.enqueue("echo", "DemoFailure is only a word here"))
    for one in [*failed, fine]:
        redis.run(redis.client.wait(one.id, timeout=10))
    with signed_in(ui_server) as http:
        page = http.get("/ui/queues/default?status=failed&q=demofailure").text
        assert set(TASK_ROW.findall(page)) >= {t.id for t in failed}
        assert fine.id not in TASK_ROW.findall(page)
        everywhere = http.get("/ui/queues/default?q=demofailure").text
        assert {fine.id, *(t.id for t in failed)} <= set(TASK_ROW.findall(everywhere))
        assert "whose payload or error holds" in page


def test_a_task_is_found_by_its_idempotency_key_from_its_queue_page(
    ui_server: LiveServer, redis: Redis
) -> None:
    made = redis.run(redis.client.enqueue("echo", 1, queue="billing", idempotency_key="inv-7"))
    with signed_in(ui_server) as http:
        assert 'name="idempotency_key"' in http.get("/ui/queues/billing").text
        found = http.get("/ui/find", params={"queue": "billing", "idempotency_key": "inv-7"})
        assert found.status_code == 303
        assert found.headers["location"] == f"/ui/tasks/{made.id}"
        missing = http.get("/ui/find", params={"queue": "billing", "idempotency_key": "inv-8"})
        assert missing.status_code == 404
        assert "No task on billing holds the idempotency key" in missing.text
        wrong = http.get("/ui/find", params={"queue": "bad queue!", "idempotency_key": "x"})
        assert wrong.status_code == 404
