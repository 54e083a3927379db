"""API keys: every route in the OpenAPI document (but /health) refuses a missing or wrong key."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from arqd.api import create_app
from arqd.core.settings import Settings
from conftest import RedisServer
from e2e.live import API_KEY, AUTH, LiveServer, settings_for

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
