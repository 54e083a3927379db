"""The Workers and Breakers pages live in a real browser: a worker that starts, the task it
runs, a breaker that opens and a request the rate limit refuses show without a reload, and
the page sends no request after it loaded (one WebSocket carries the tables). And the
overview's count of held tasks, by reason, kept live the same way as its other counts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from arqd.client import NewTask
from arqd.resilience.breaker import BreakerPolicy
from arqd.resilience.circuit import CircuitBreaker
from arqd.store.leases import Limit
from e2e.live import API_KEY, LiveServer
from ui.browser import Offline, offline_page
from ui.conftest import Redis


@pytest.fixture
def signed_in(browser: Browser, ui_server: LiveServer) -> Iterator[Offline]:
    with offline_page(browser) as page:
        page.sign_in(ui_server, API_KEY)
        yield page


def test_a_worker_and_its_running_task_appear_on_the_workers_page_live(
    signed_in: Offline, ui_server: LiveServer, redis: Redis
) -> None:
    page = signed_in.page
    page.goto(f"{ui_server.url}/ui/workers")
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    loaded = len(signed_in.requests)
    worker = redis.start_worker(["live-workers"])
    expect(page.locator(f'tr[id="{worker.id}"]')).to_be_visible(timeout=5000)
    task = redis.run(redis.client.enqueue("sleep", {"seconds": 3}, queue="live-workers"))
    expect(page.locator(".sub", has_text=task.id)).to_be_visible(timeout=5000)
    assert signed_in.requests[loaded:] == []  # no request: the socket brought both
    signed_in.assert_clean()


def test_a_breaker_that_opens_and_a_refused_request_appear_on_the_breakers_page_live(
    signed_in: Offline, ui_server: LiveServer, redis: Redis
) -> None:
    page = signed_in.page
    page.goto(f"{ui_server.url}/ui/breakers")
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    loaded = len(signed_in.requests)
    breaker = CircuitBreaker("live-mail", redis.client.store, BreakerPolicy(threshold=1))

    async def trip() -> None:
        with pytest.raises(RuntimeError):
            async with breaker:
                raise RuntimeError("smtp down")

    redis.run(trip())
    row = page.locator('tr[data-breaker="live-mail"]')
    expect(row).to_contain_text("open", timeout=5000)
    refusal = {"client": "key:abc", "method": "POST", "path": "/tasks/live-refused"}
    redis.run(redis.client.rate_limiter("http").note_refused({**refusal, "limit": 60}))
    expect(page.locator("#refusals")).to_contain_text("/tasks/live-refused", timeout=5000)
    assert signed_in.requests[loaded:] == []
    signed_in.assert_clean()


def test_a_socket_asking_for_a_view_that_does_not_exist_is_closed(
    signed_in: Offline, ui_server: LiveServer
) -> None:
    page = signed_in.page
    page.goto(f"{ui_server.url}/ui/workers")
    code = page.evaluate(
        """() => new Promise((done) => {
            const socket = new WebSocket(`ws://${location.host}/ui/events?view=nope`);
            socket.onclose = (event) => done(event.code);
        })"""
    )
    assert code == 1006  # refused at the handshake (403), as a socket with a bad queue is


def test_the_overview_shows_held_tasks_by_reason_and_keeps_the_count_live(
    signed_in: Offline, ui_server: LiveServer, redis: Redis
) -> None:
    made = redis.run(redis.client.enqueue_many([NewTask("slow", queue="held-q") for _ in range(3)]))
    limit = [Limit("slow", concurrency=1)]
    store = redis.client.store
    redis.run(store.leases.dequeue("held-q", 3, "w", limit))  # one runs, two are held
    page = signed_in.page
    page.goto(f"{ui_server.url}/ui")
    held = page.locator('#queues tr[data-queue="held-q"] [data-count="held"]')
    expect(held).to_have_text("2")
    expect(held).to_have_attribute("title", "rate limit 0 · concurrency 2 · breaker 0")
    redis.run(redis.client.cancel(made[2].id))  # one held task fewer, told live
    expect(held).to_have_text("1", timeout=5000)
    signed_in.assert_clean()


@pytest.mark.parametrize("where", ["overview", "queue"])
def test_throughput_charts_are_drawn_again_live_as_tasks_finish(
    signed_in: Offline, ui_server: LiveServer, redis: Redis, where: str
) -> None:
    queue = f"charts-{where}"
    redis.run(redis.client.enqueue("echo", 0, queue=queue))  # the queue exists, no task done
    page = signed_in.page
    page.goto(
        f"{ui_server.url}/ui" if where == "overview" else f"{ui_server.url}/ui/queues/{queue}"
    )
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    chart = page.locator(
        f'[data-chart="{queue}"] svg' if where == "overview" else "#throughput svg"
    )
    expect(chart).to_have_attribute("data-succeeded", "0")
    loaded = len(signed_in.requests)
    redis.start_worker([queue])
    expect(chart).to_have_attribute("data-succeeded", "1", timeout=5000)
    made = redis.run(redis.client.enqueue_many([NewTask("echo", n, queue=queue) for n in range(4)]))
    for task in made:
        redis.run(redis.client.wait(task.id, timeout=10))
    expect(chart).to_have_attribute("data-succeeded", "5", timeout=5000)
    assert signed_in.requests[loaded:] == []
    signed_in.assert_clean()
