"""API keys: every route in the OpenAPI document (but /health) refuses a missing or wrong key."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from arqd.api import create_app
from arqd.api.state import ApiState
from arqd.core.settings import Settings
from conftest import RedisServer
from e2e.live import API_KEY, AUTH, LiveServer, settings_for, store_for

PUBLIC = {"/health"}
SAMPLE_BODY = {"type": "echo", "payload": None}


def operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(method, concrete path) for every operation the document lists."""
    found = []
    for template, entries in document["paths"].items():
        path = re.sub(r"\{[^}]+\}", "some-id", template)
        found += [(method.upper(), path) for method in entries]
    return found


async def document(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/openapi.json", headers=AUTH)
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    return doc


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 401, (response.request.url, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    problem = response.json()
    assert (problem["status"], problem["title"]) == (401, "Unauthorized")
    assert "API key" in problem["detail"]


async def test_every_documented_route_but_health_refuses_a_missing_or_wrong_key(
    live: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=live.url) as http:
        listed = operations(await document(http))
        assert len(listed) >= 9
        wrong_keys: list[dict[str, str]] = [
            {},
            {"Authorization": "Bearer wrong"},
            {"X-API-Key": "wrong"},
            {"Authorization": f"Basic {API_KEY}"},
            {"Authorization": f"Bearer {API_KEY}x"},
        ]
        for method, path in listed:
            if path in PUBLIC:
                continue
            for headers in wrong_keys:
                body = SAMPLE_BODY if method == "POST" else None
                response = await http.request(method, path, headers=headers, json=body)
                assert_refused(response)


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc", "/no-such-route"])
async def test_the_docs_and_unknown_paths_need_a_key_too(live: LiveServer, path: str) -> None:
    async with httpx.AsyncClient(base_url=live.url) as http:
        assert_refused(await http.get(path))
        assert (await http.get(path, headers=AUTH)).status_code in (200, 404)


async def test_either_header_and_any_configured_key_is_accepted(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.url) as http:
        for headers in (
            {"Authorization": f"Bearer {API_KEY}"},
            {"Authorization": f"bearer {API_KEY}"},
            {"X-API-Key": API_KEY},
            {"X-API-Key": "other-key-2"},
        ):
            assert (await http.get("/queues", headers=headers)).status_code == 200


async def test_health_needs_no_key(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.url) as http:
        response = await http.get("/health")
    assert response.status_code == 200
    assert set(response.json()) == {
        "status",
        "timestamp",
        "uptime_seconds",
        "queue_length",
        "active_consumers",
    }


async def test_the_document_declares_the_keys_on_every_protected_operation(
    live: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=live.url) as http:
        doc = await document(http)
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    for template, entries in doc["paths"].items():
        for operation in entries.values():
            declared = "security" in operation and "401" in operation["responses"]
            assert declared == (template not in PUBLIC), template


async def test_the_websocket_refuses_a_missing_or_wrong_key(live: LiveServer) -> None:
    server_log = _Records()
    logging.getLogger("uvicorn.error").addHandler(server_log)
    try:
        for query, headers in (("", {}), ("?api_key=wrong", {}), ("", {"X-API-Key": "wrong"})):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(f"{live.ws_url}/events{query}", additional_headers=headers):
                    pass
            assert refused.value.response.status_code == 401
            assert refused.value.response.headers["content-type"] == "application/problem+json"
    finally:
        logging.getLogger("uvicorn.error").removeHandler(server_log)
    # A refusal is an answer, not a server error: uvicorn's false alarm is not logged.
    assert [r.getMessage() for r in server_log.records if r.levelno >= logging.ERROR] == []


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_the_websocket_accepts_a_key_in_a_header_or_the_query(live: LiveServer) -> None:
    async with connect(f"{live.ws_url}/events?api_key={API_KEY}"):
        pass
    async with connect(f"{live.ws_url}/events", additional_headers={"X-API-Key": API_KEY}):
        pass


@pytest.fixture
def open_server(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> Iterator[LiveServer]:
    settings: Settings = settings_for(redis_server.url, api_keys=None)
    with caplog.at_level(logging.WARNING, logger="arqd.api"):
        server = LiveServer(create_app(settings))
        server.start()
    yield server
    server.stop()


async def test_with_no_keys_the_api_is_open_and_says_so_at_start_up(
    open_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    assert any(
        "API_KEYS is not set: the API is OPEN" in r.message for r in caplog.get_records("setup")
    )
    async with httpx.AsyncClient(base_url=open_server.url) as http:
        response = await http.post("/tasks", json=SAMPLE_BODY)
    assert response.status_code == 201


# Read-only keys --------------------------------------------------------------------------

READER = {"X-API-Key": "reader-key-1"}


@pytest.fixture
def with_reader(redis_server: RedisServer) -> Iterator[LiveServer]:
    keys = f"{API_KEY},reader-key-1"
    server = LiveServer(
        create_app(settings_for(redis_server.url, api_keys=keys, read_only_keys="reader-key-1"))
    )
    server.start()
    yield server
    server.stop()


async def test_a_read_only_key_reads_but_changes_nothing(with_reader: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=with_reader.url) as http:
        created = await http.post("/tasks", json=SAMPLE_BODY, headers=AUTH)
        assert created.status_code == 201
        task_url = f"/tasks/{created.json()['id']}"
        changes = [
            await http.post("/tasks", json=SAMPLE_BODY, headers=READER),
            await http.post("/tasks/batch", json={"tasks": [SAMPLE_BODY]}, headers=READER),
            await http.delete(task_url, headers=READER),
            await http.post(f"{task_url}/retry", headers=READER),
            await http.post("/breakers/anything/reset", headers=READER),
        ]
        for refused in changes:
            assert refused.status_code == 403, refused.text
            assert refused.json()["type"] == "urn:arqd:problem:read-only-key"
        assert (await http.get(task_url, headers=READER)).json()["status"] == "queued"
        assert (await http.get("/queues", headers=READER)).status_code == 200
    async with connect(f"{with_reader.ws_url}/events", additional_headers=READER):
        pass  # the event feed is a read


# Wrong keys per client address --------------------------------------------------------------

GUESSES = 20  # wrong keys a minute from one address: a token every 3 s, none in a test's burst
WRONG = {"X-API-Key": "guess"}


@pytest.fixture
def guarded(redis_server: RedisServer) -> Iterator[list[LiveServer]]:
    """Two API replicas on one Redis and key prefix, wrong keys limited per address."""
    settings = settings_for(redis_server.url, auth_failures_per_minute=GUESSES)
    servers = [LiveServer(create_app(settings)) for _ in range(2)]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()


def assert_too_many(response: httpx.Response) -> int:
    """A 429 problem for too many wrong keys; returns Retry-After."""
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:arqd:problem:too-many-wrong-keys"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 60 // GUESSES
    return retry_after


def metric(exposition: str, sample_name: str, labels: dict[str, str]) -> float:
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == sample_name and sample.labels == labels:
                return sample.value
    raise AssertionError(f"{sample_name}{labels} is missing")


async def test_wrong_keys_from_one_address_are_bounded_across_replicas(
    guarded: list[LiveServer], api_settings: Settings
) -> None:
    one, two = guarded
    other_address = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with (
        httpx.AsyncClient(base_url=one.url) as http_one,
        httpx.AsyncClient(base_url=two.url) as http_two,
        httpx.AsyncClient(base_url=one.url, transport=other_address) as elsewhere,
    ):
        # One budget for the address, whichever replica it guesses on.
        for n in range(GUESSES):
            assert_refused(await (http_one, http_two)[n % 2].get("/queues", headers=WRONG))
        retry_after = assert_too_many(await http_one.get("/queues", headers=WRONG))
        # Over its budget, the address is refused before its key is compared: a right key
        # too, and a request with no key.
        assert_too_many(await http_one.get("/queues", headers=AUTH))
        assert_too_many(await http_one.get("/tasks"))
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{one.ws_url}/events", additional_headers=AUTH):
                pass
        assert_too_many(_as_httpx(refused.value))
        assert_too_many(await http_two.get("/tasks", headers=WRONG))  # shared in Redis
        # Another address has a budget of its own.
        assert (await elsewhere.get("/queues", headers=AUTH)).status_code == 200
        assert_refused(await elsewhere.get("/queues", headers=WRONG))
        # /health needs no key, so it is never refused for one.
        assert (await http_one.get("/health")).status_code == 200

        counted_one = (await elsewhere.get("/metrics", headers=AUTH)).text
        await asyncio.sleep(retry_after)  # the budget's next token is due
        assert (await http_one.get("/queues", headers=AUTH)).status_code == 200

    assert metric(counted_one, "arq_rate_limited_requests_total", {"scope": "auth"}) == 4
    assert metric(counted_one, "arq_auth_failures_total", {}) == GUESSES // 2 + 1
    async with store_for(settings_of(one)) as store:
        events: Any = await store.redis.xrange(store.keys.rate_limit_events())
    # One event each time a replica finds the address over its budget in Redis.
    assert [fields[b"scope"] for _, fields in events] == [b"auth", b"auth"]
    for _, fields in events:
        assert fields[b"client"] == b"addr:127.0.0.1"
        assert fields[b"limit"] == str(GUESSES).encode()
        assert int(fields[b"retry_after_ms"]) <= 60_000 / GUESSES


def _as_httpx(refused: InvalidStatus) -> httpx.Response:
    """The HTTP answer to a refused WebSocket upgrade, as an httpx response."""
    answer = refused.response
    body = bytes(answer.body)
    return httpx.Response(answer.status_code, headers=dict(answer.headers), content=body)


def settings_of(server: LiveServer) -> Settings:
    state: ApiState = server.app.state.arqd
    return state.settings


async def test_a_right_key_and_a_missing_key_cost_no_redis_call(guarded: list[LiveServer]) -> None:
    one, _ = guarded
    async with (
        httpx.AsyncClient(base_url=one.url) as http,
        store_for(settings_of(one)) as store,
    ):
        budget = store.keys.rate_limit("auth", "addr:127.0.0.1")
        for _ in range(GUESSES * 2):
            assert (await http.get("/queues", headers=AUTH)).status_code == 200
            assert_refused(await http.get("/queues"))
        assert await store.redis.exists(budget) == 0
        assert_refused(await http.get("/queues", headers=WRONG))
        assert await store.redis.exists(budget) == 1


async def test_redis_unreachable_a_wrong_key_still_gets_401(own_redis: RedisServer) -> None:
    settings = settings_for(own_redis.url, auth_failures_per_minute=GUESSES)
    server = LiveServer(create_app(settings))
    server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            assert (await http.get("/queues", headers=AUTH)).status_code == 200
            own_redis.stop()
            for _ in range(GUESSES + 5):
                assert_refused(await http.get("/queues", headers=WRONG))
            assert (await http.get("/queues", headers=AUTH)).status_code == 503
    finally:
        server.stop()


async def test_zero_turns_the_wrong_key_limit_off(redis_server: RedisServer) -> None:
    server = LiveServer(create_app(settings_for(redis_server.url, auth_failures_per_minute=0)))
    server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            for _ in range(50):
                assert_refused(await http.get("/queues", headers=WRONG))
    finally:
        server.stop()
