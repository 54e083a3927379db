"""The HTTP rate limit: one budget per API key (or client address) across API replicas."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from arqd.api import create_app
from arqd.api.ratelimit import http_subject
from arqd.client import Client
from arqd.core.settings import Settings
from arqd.store.connection import connect_server as connect_redis
from arqd.store.store import Store
from conftest import RedisServer
from e2e.live import API_KEY, AUTH, ApiProcess, LiveServer, next_message, settings_for

N = 20  # requests per minute: one token every 3 s, so a test's burst sees no refill
INTERVAL_MS = 60_000 / N
EXEMPT = ("/health", "/ready", "/metrics", "/metrics.json")


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    connection = connect_redis(redis_server.url)
    yield connection
    await connection.aclose()


@pytest.fixture
def servers() -> Iterator[list[LiveServer]]:
    started: list[LiveServer] = []
    yield started
    for server in started:
        server.stop()


def serve(servers: list[LiveServer], settings: Settings) -> LiveServer:
    server = LiveServer(create_app(settings))
    server.start()
    servers.append(server)
    return server


def assert_rate_limit_headers(response: httpx.Response, limit: int) -> None:
    assert response.headers["ratelimit-limit"] == str(limit)
    assert int(response.headers["ratelimit-remaining"]) >= 0
    assert int(response.headers["ratelimit-reset"]) >= 0


def assert_refused(response: httpx.Response, limit: int) -> int:
    """A 429 problem with its headers; returns Retry-After."""
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:arqd:problem:rate-limited"
    assert_rate_limit_headers(response, limit)
    assert response.headers["ratelimit-remaining"] == "0"
    retry_after = int(response.headers["retry-after"])
    assert retry_after >= 1
    return retry_after


async def redis_ms(store: Store) -> float:
    seconds, micros = await store.redis.time()
    return seconds * 1000 + micros / 1000


def refused_count(exposition: str) -> float:
    for family in text_string_to_metric_families(exposition):
        if family.name == "arq_rate_limited_requests":
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels == {"scope": "http"}:
                    return sample.value
    raise AssertionError("arq_rate_limited_requests_total{scope='http'} is missing")


async def test_two_api_processes_share_one_budget_per_key(
    redis_server: RedisServer, redis: aioredis.Redis
) -> None:
    settings = settings_for(redis_server.url, requests_per_minute=N)
    store = Store(redis, settings)
    apis = [ApiProcess(settings), ApiProcess(settings)]
    try:
        await asyncio.gather(*(api.started() for api in apis))
        async with (
            httpx.AsyncClient(base_url=apis[0].url, headers=AUTH, timeout=30) as one,
            httpx.AsyncClient(base_url=apis[1].url, headers=AUTH, timeout=30) as two,
        ):
            started = time.monotonic()
            responses = await asyncio.gather(
                *(http.get("/queues") for http in (one, two) for _ in range(N + 5))
            )
            elapsed_ms = (time.monotonic() - started) * 1000
            admitted = [r for r in responses if r.status_code == 200]
            refused = [r for r in responses if r.status_code != 200]

            # GCRA: the burst (N), plus a token per interval the hammering took.
            refills = int(elapsed_ms / INTERVAL_MS)
            assert N <= len(admitted) <= N + refills
            # Either replica may have won the whole burst (each sends its requests' tokens
            # in one script call); both then refuse, each over the budget they share.
            assert {r.request.url.port for r in refused} == {apis[0].port, apis[1].port}
            if refills == 0:
                remaining = sorted(int(r.headers["ratelimit-remaining"]) for r in admitted)
                assert remaining == list(range(N))
            for response in admitted:
                assert_rate_limit_headers(response, N)
            for response in refused:
                assert_refused(response, N)

            # Retry-After is the time until the next token, rounded up to whole seconds.
            # The script's clock is Redis' in whole ms, read between `before` and `after`.
            before = math.floor(await redis_ms(store))
            late = await one.get("/queues")
            after = await redis_ms(store)
            retry_after = assert_refused(late, N)
            stored: Any = await redis.get(store.keys.rate_limit("http", subject(API_KEY)))
            tat = float(stored)
            next_token = tat - INTERVAL_MS * (N - 1)
            assert max(1, math.ceil((next_token - after) / 1000)) <= retry_after
            assert retry_after <= max(1, math.ceil((next_token - before) / 1000))
            reset = int(late.headers["ratelimit-reset"])
            assert math.ceil((tat - after) / 1000) <= reset <= math.ceil((tat - before) / 1000)

            # Waiting as long as Retry-After says is enough, on either replica.
            await asyncio.sleep(retry_after)
            again = await two.get("/queues")
            assert again.status_code == 200, again.text

            total_refused = len(refused) + 1
            counted = [refused_count((await http.get("/metrics")).text) for http in (one, two)]
            assert sum(counted) == total_refused
    finally:
        for api in apis:
            api.stop()

    events: Any = await redis.xrange(store.keys.rate_limit_events())
    assert len(events) == total_refused
    for _, fields in events:
        assert fields[b"scope"] == b"http"
        assert fields[b"client"] == subject(API_KEY).encode()
        assert fields[b"path"] == b"/queues"
        assert fields[b"limit"] == str(N).encode()
    assert not [k async for k in redis.scan_iter(f"*{API_KEY}*")], "the raw key is in Redis"


def subject(key: str) -> str:
    return http_subject(key.encode(), None)


async def test_without_keys_each_client_address_has_its_own_budget(
    redis_server: RedisServer, servers: list[LiveServer]
) -> None:
    live = serve(servers, settings_for(redis_server.url, api_keys=None, requests_per_minute=3))
    other_address = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with (
        httpx.AsyncClient(base_url=live.url) as first,
        httpx.AsyncClient(base_url=live.url, transport=other_address) as second,
    ):
        assert [(await first.get("/queues")).status_code for _ in range(4)] == [200] * 3 + [429]
        assert [(await second.get("/queues")).status_code for _ in range(4)] == [200] * 3 + [429]
        # A key sent to an open API does not buy a fresh budget.
        assert_refused(await first.get("/queues", headers={"X-API-Key": "made-up"}), 3)


async def test_an_override_key_has_its_own_limit_and_zero_means_none(
    redis_server: RedisServer, servers: list[LiveServer]
) -> None:
    settings = settings_for(
        redis_server.url,
        api_keys=f"{API_KEY},other-key-2,third-key-3",
        requests_per_minute=4,
        rate_limit_overrides=f"{API_KEY}=2,other-key-2=0",
    )
    live = serve(servers, settings)
    async with httpx.AsyncClient(base_url=live.url) as http:

        async def statuses(key: str, count: int) -> list[int]:
            return [
                (await http.get("/tasks", headers={"X-API-Key": key})).status_code
                for _ in range(count)
            ]

        assert await statuses(API_KEY, 3) == [200, 200, 429]
        assert await statuses("third-key-3", 5) == [200] * 4 + [429]
        assert await statuses("other-key-2", 12) == [200] * 12
        unlimited = await http.get("/tasks", headers={"X-API-Key": "other-key-2"})
        assert "ratelimit-limit" not in unlimited.headers
        assert_refused(await http.get("/tasks", headers=AUTH), 2)


async def test_probes_and_metrics_are_never_limited(
    redis_server: RedisServer, servers: list[LiveServer]
) -> None:
    live = serve(servers, settings_for(redis_server.url, requests_per_minute=1))
    async with httpx.AsyncClient(base_url=live.url, headers=AUTH) as http:
        assert (await http.get("/queues")).status_code == 200
        assert_refused(await http.get("/queues"), 1)
        for path in EXEMPT * 5:
            response = await http.get(path)
            assert response.status_code == 200, (path, response.text)
            assert "ratelimit-limit" not in response.headers


async def test_a_websocket_counts_once_when_it_connects(
    redis_server: RedisServer, servers: list[LiveServer], redis: aioredis.Redis
) -> None:
    settings = settings_for(redis_server.url, requests_per_minute=2)
    live = serve(servers, settings)
    client = Client(Store(redis, settings))
    async with (
        httpx.AsyncClient(base_url=live.url, headers=AUTH) as http,
        connect(f"{live.ws_url}/events", additional_headers=AUTH) as ws,
    ):
        for n in range(5):  # messages on an open WebSocket are not requests
            task = await client.enqueue("echo", n)
            assert (await next_message(ws))["task_id"] == task.id
        assert (await http.get("/queues")).status_code == 200
        assert_refused(await http.get("/queues"), 2)
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{live.ws_url}/events", additional_headers=AUTH):
                pass
    response = refused.value.response
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["content-type"] == "application/problem+json"


async def test_redis_unreachable_means_503_not_500(
    own_redis: RedisServer, servers: list[LiveServer]
) -> None:
    live = serve(servers, settings_for(own_redis.url, requests_per_minute=N))
    async with httpx.AsyncClient(base_url=live.url, headers=AUTH, timeout=10) as http:
        assert (await http.get("/queues")).status_code == 200
        own_redis.stop()
        started = time.monotonic()
        response = await http.get("/queues")
        assert time.monotonic() - started < 2.0, "the limiter must fail fast"
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
        assert response.json()["type"] == "urn:arqd:problem:redis-unavailable"
        assert (await http.get("/health")).json()["status"] == "degraded"
