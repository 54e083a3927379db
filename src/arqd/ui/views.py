"""The Workers, Breakers and workflow pages, kept live over ``WS /ui/events?view=...``.

Neither has events of its own to follow: a worker's heartbeat is no event, and a breaker's
state is the sum of many. So the server renders the page's table again after events that
may change it (task events; breaker transitions and rate-limit refusals from the system
streams), and at least every ``REFRESH`` seconds while the page is open, and sends it when
it changed (``{"kind": "view", "html": ...}``); the page swaps it in. The page itself sends
no request: the one socket carries everything.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.websockets import WebSocket

from arqd.api.schemas import dumps
from arqd.client import Client
from arqd.feeds import EventFeed, StreamEvent, SystemFeed
from arqd.ui.web import Ui, Viewer
from arqd.ui.workflows import workflow_context

REFRESH = 2.0  # seconds: heartbeats and lease deadlines change without events
SETTLE = 0.2  # seconds a burst of events is let finish before the table is rendered again
REFUSALS_SHOWN = 20


async def workers_context(client: Client, params: Mapping[str, str]) -> dict[str, Any]:
    return {"workers": sorted(await client.workers(), key=lambda w: w.id)}


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request the HTTP rate limit refused, as the Breakers page shows it."""

    at: datetime
    client: str
    method: str
    path: str
    limit: str
    retry_after_s: float

    @classmethod
    def of(cls, event: StreamEvent) -> Refusal:
        field = {k.decode(): v.decode() for k, v in event.fields.items()}.get
        millis = int(event.id.partition("-")[0])
        return cls(
            at=datetime.fromtimestamp(millis / 1000, UTC),
            client=field("client", ""),
            method=field("method", ""),
            path=field("path", ""),
            limit=field("limit", ""),
            retry_after_s=int(field("retry_after_ms", "0") or 0) / 1000,
        )


async def breakers_context(client: Client, params: Mapping[str, str]) -> dict[str, Any]:
    found, refused = await asyncio.gather(client.breakers(), client.refusals(REFUSALS_SHOWN))
    refusals = [Refusal.of(event) for event in refused]
    return {"breakers": sorted(found, key=lambda b: b.name), "refusals": refusals}


Context = Callable[[Client, Mapping[str, str]], Awaitable[dict[str, Any]]]
# view: (its table's template, what it shows, whether the system streams change it)
VIEWS: dict[str, tuple[str, Context, bool]] = {
    "workers": ("workers_view.html", workers_context, False),
    "breakers": ("breakers_view.html", breakers_context, True),
    "workflow": ("workflow_view.html", workflow_context, False),
}


class LiveView:
    """One page's socket: its table, rendered again when it may have changed."""

    def __init__(
        self, websocket: WebSocket, ui: Ui, viewer: Viewer, view: str, params: Mapping[str, str]
    ) -> None:
        self.websocket = websocket
        self.params = params
        self.ui = ui
        self.viewer = viewer
        self.template, self.context, system = VIEWS[view]
        self.feeds: list[EventFeed | SystemFeed] = [ui.state.feeds.events()]
        if system:
            self.feeds.append(ui.state.feeds.system_events())
        self.changed = asyncio.Event()

    async def run(self) -> None:
        for feed in self.feeds:
            await feed.start()  # from now on: events before this are in the first render
        jobs = [asyncio.create_task(self._follow(feed)) for feed in self.feeds]
        jobs += [asyncio.create_task(self._render()), asyncio.create_task(self._watch())]
        try:
            done, _ = await asyncio.wait(jobs, return_when=asyncio.FIRST_COMPLETED)
            for job in done:
                job.result()  # the socket closed (WebSocketDisconnect), or Redis failed
        finally:
            for feed in self.feeds:
                feed.close()
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)

    async def _follow(self, feed: EventFeed | SystemFeed) -> None:
        async for _ in feed:
            self.changed.set()

    async def _render(self) -> None:
        shown = None
        while True:
            context = await self.context(self.ui.client, self.params)
            html = self.ui.fragment(self.template, self.viewer, context)
            if html != shown:
                message = {"kind": "view", "html": html}
                await self.websocket.send_text(dumps(message).decode())
                shown = html
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), REFRESH)
                await asyncio.sleep(SETTLE)
            self.changed.clear()

    async def _watch(self) -> None:
        while (await self.websocket.receive())["type"] != "websocket.disconnect":
            pass
