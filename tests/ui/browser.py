"""Driving the dashboard in the system's Chromium, offline: every request off loopback is
blocked, and every failed request, console error and script error is written down."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Response, Route, expect

from e2e.live import LiveServer

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-background-networking"]


class Offline:
    """A page on which every request off loopback is blocked, and whatever went wrong
    is written down."""

    def __init__(self, browser: Browser, width: int = 1280, height: int = 800) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.page: Page = self.context.new_page()
        self.blocked: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.requests: list[str] = []  # every HTTP request, in order
        self.page.route("**/*", self._route)
        self.page.on("request", lambda r: self.requests.append(f"{r.method} {r.url}"))
        self.page.on("requestfailed", self._request_failed)
        self.page.on("response", self._response)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", self._console)

    def _route(self, route: Route, request: Request) -> None:
        if urlsplit(request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            self.blocked.append(request.url)
            route.abort()

    def _request_failed(self, request: Request) -> None:
        # A navigation that replaces a page aborts what the old page still loaded: no fault.
        if request.failure != "net::ERR_ABORTED":
            self.failed.append(f"{request.url}: {request.failure}")

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.failed.append(f"{response.url}: HTTP {response.status}")

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def sign_in(self, server: LiveServer, key: str) -> None:
        page = self.page
        page.goto(f"{server.url}/ui")
        expect(page).to_have_url(f"{server.url}/ui/login?next=/ui")
        page.fill("#key", key)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Overview")

    def live(self) -> None:
        """Wait until the page's socket is open."""
        expect(self.page.locator("#live")).to_have_attribute("data-state", "live")

    def assert_clean(self) -> None:
        assert not self.blocked, f"requests off the machine: {self.blocked}"
        assert not self.failed, f"failed requests: {self.failed}"
        assert not self.errors, f"console or script errors: {self.errors}"


@contextmanager
def offline_page(browser: Browser, **size: int) -> Iterator[Offline]:
    page = Offline(browser, **size)
    try:
        yield page
    finally:
        page.context.close()
