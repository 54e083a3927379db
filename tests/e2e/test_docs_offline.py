"""``/docs`` renders in a real browser with every request off the machine blocked: Swagger
UI's script and style come from the wheel, not a CDN.

Needs Chromium at /usr/bin/chromium (Debian's ``chromium``), driven by playwright; the
browser is never downloaded (no ``playwright install``)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Request, Route, expect, sync_playwright

from e2e.live import AUTH, LiveServer
from tools import CHROMIUM, require

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-background-networking"]


class Offline:
    """A page on which every request off loopback is blocked, and everything that went
    wrong is written down."""

    def __init__(self, browser: Browser) -> None:
        self.context = browser.new_context(extra_http_headers=AUTH)
        self.page: Page = self.context.new_page()
        self.blocked: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.page.route("**/*", self._route)
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.url}: {r.failure}"))
        self.page.on("response", self._response)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _route(self, route: Route, request: Request) -> None:
        if urlsplit(request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            self.blocked.append(request.url)
            route.abort()

    def _response(self, response: object) -> None:
        status = getattr(response, "status", 0)
        if status >= 400:
            self.failed.append(f"{getattr(response, 'url', '?')}: HTTP {status}")

    def assert_clean(self) -> None:
        assert self.blocked == [], "requests off the machine"
        assert self.failed == [], "failed requests"
        assert self.errors == [], "script errors"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = require(CHROMIUM)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def offline(browser: Browser) -> Iterator[Offline]:
    page = Offline(browser)
    yield page
    page.context.close()


def test_swagger_ui_lists_the_endpoints_offline(live: LiveServer, offline: Offline) -> None:
    page = offline.page
    page.goto(f"{live.url}/docs")
    enqueue = page.locator(".opblock-post").filter(has=page.locator('[data-path="/tasks"]'))
    expect(enqueue).to_be_visible(timeout=15_000)
    expect(enqueue.locator(".opblock-summary-method")).to_have_text("POST")
    expect(page.locator('.opblock-get [data-path="/health"]')).to_be_visible()
    page.wait_for_load_state("networkidle")
    offline.assert_clean()


def test_redoc_is_not_served(live: LiveServer, offline: Offline) -> None:
    """ReDoc's page loads its logo from a CDN whatever its options, so there is none."""
    assert offline.page.request.get(f"{live.url}/redoc").status == 404
