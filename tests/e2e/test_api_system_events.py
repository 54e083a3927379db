"""``WS /events/system``: named breakers' transitions and rate-limit refusals, live."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from arqd.api import create_app
from arqd.api.ratelimit import http_subject
from arqd.core.settings import Settings
from arqd.store.store import Store
from conftest import RedisServer
from e2e.live import API_KEY, AUTH, LiveServer, next_message, settings_for, store_for


@pytest.fixture
def settings(redis_server: RedisServer) -> Settings:
    return settings_for(redis_server.url, requests_per_minute=2)


@pytest.fixture
def limited(settings: Settings) -> Iterator[LiveServer]:
    """The API alone, with a budget of two requests a minute per key."""
    server = LiveServer(create_app(settings))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def limited_store(settings: Settings) -> AsyncIterator[Store]:
    async with store_for(settings) as store:
        yield store


async def test_breaker_transitions_and_refusals_arrive_live_and_replay(
    limited: LiveServer, limited_store: Store
) -> None:
    store = limited_store
    url = f"{limited.ws_url}/events/system"
    async with (
        connect(url, additional_headers=AUTH) as ws,
        httpx.AsyncClient(base_url=limited.url, headers=AUTH) as http,
    ):
        for _ in range(2):
            await store.limits.breaker("payments", "fail", threshold=2, open_ms=60_000)
        opened = await next_message(ws)
        assert (opened["source"], opened["breaker"]) == ("breaker", "payments")
        assert (opened["event"], opened["state"]) == ("breaker_opened", 1)
        assert opened["timestamp"].endswith("Z")

        # The socket took the first token of the budget, one GET the second: refused next.
        assert (await http.get("/queues")).status_code == 200
        assert (await http.get("/queues?x=1")).status_code == 429
        refused = await next_message(ws)
    assert refused["source"] == "rate_limit"
    assert (refused["method"], refused["path"], refused["limit"]) == ("GET", "/queues", 2)
    assert refused["client"] == http_subject(API_KEY.encode(), None)
    assert API_KEY not in str(refused)
    assert refused["retry_after_ms"] > 0
    assert refused["event_id"] > opened["event_id"]

    # A second key's budget: reconnecting from the first event replays the second.
    await store.redis.delete(store.keys.rate_limit("http", http_subject(API_KEY.encode(), None)))
    resume = f"{url}?last_event_id={opened['event_id']}&source=rate_limit"
    async with connect(resume, additional_headers=AUTH) as ws:
        assert (await next_message(ws))["event_id"] == refused["event_id"]


async def test_a_source_filter_and_bad_parameters(live: LiveServer, store: Store) -> None:
    url = f"{live.ws_url}/events/system?source=breaker&last_event_id=0-0"
    await store.limits.breaker("mail", "fail", threshold=1, open_ms=60_000)
    async with connect(url, additional_headers=AUTH) as ws:
        first = await next_message(ws)
    assert (first["source"], first["breaker"]) == ("breaker", "mail")

    for query in ("source=weather", "last_event_id=yesterday"):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{live.ws_url}/events/system?{query}", additional_headers=AUTH):
                pass
        assert refused.value.response.status_code == 422


async def test_the_system_feed_needs_a_key(live: LiveServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{live.ws_url}/events/system"):
            pass
    assert refused.value.response.status_code == 401
