"""The task page's trace id: a link to the tracing UI when ARQD_TRACE_URL is set (opened in
a new tab, without a handle on this page), plain text when it is not."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser

import pytest

from arqd.client import NewTask
from arqd.core.settings import Settings
from conftest import RedisServer
from e2e.live import LiveServer, settings_for
from ui.conftest import Redis, serve, signed_in

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
JAEGER = "http://localhost:16686/trace/{trace_id}"


class Links(HTMLParser):
    """Every ``<a>`` of a page, as its attributes."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[dict[str, str | None]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.found.append(dict(attrs))


def trace_links(html: str) -> list[dict[str, str | None]]:
    return [a for a in Links(html).found if TRACE_ID in (a.get("href") or "")]


@dataclass(frozen=True)
class Served:
    server: LiveServer
    settings: Settings


@pytest.fixture(params=[JAEGER, None], ids=["template", "no-template"])
def served(request: pytest.FixtureRequest, redis_server: RedisServer) -> Iterator[Served]:
    settings = settings_for(redis_server.url, trace_url=request.param)
    server = serve(settings)
    yield Served(server, settings)
    server.stop()


def task_page(served: Served, traced: bool) -> str:
    """The page of a task (scheduled, so it stays put) enqueued with or without a trace."""
    context = {"traceparent": TRACEPARENT} if traced else None
    redis = Redis(served.settings)
    try:
        new = NewTask("echo", delay=600, trace_context=context)
        task = redis.run(redis.client.enqueue_task(new))
    finally:
        redis.close()
    with signed_in(served.server) as http:
        answer = http.get(f"/ui/tasks/{task.id}")
    assert answer.status_code == 200, answer.text
    return answer.text


def test_the_trace_id_links_to_the_template_when_set_and_is_plain_text_otherwise(
    served: Served,
) -> None:
    html = task_page(served, traced=True)
    assert TRACE_ID in html
    links = trace_links(html)
    if served.settings.trace_url is None:
        assert links == []
        assert f"<code>{TRACE_ID}</code>" in html
        return
    (link,) = links
    assert link["href"] == f"http://localhost:16686/trace/{TRACE_ID}"
    assert link["target"] == "_blank"
    assert link["rel"] == "noopener"


def test_a_task_without_a_trace_has_no_link(served: Served) -> None:
    html = task_page(served, traced=False)
    assert 'id="trace-link"' not in html
    assert "<dt>Trace id</dt><dd>—</dd>" in html
