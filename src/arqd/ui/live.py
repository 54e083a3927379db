"""``WS /ui/events``: the dashboard's pages live, without polling.

The same feed as the API's ``WS /events`` (and its ``event_json`` messages, resumed with
``last_event_id``), behind the dashboard's session cookie instead of an API key, so no
key ever reaches a page's script. After each burst of events the socket also sends the
fresh counts of the queue (or of every queue), at most every ``STATS_INTERVAL`` seconds,
so the counts a page shows equal a fresh reload's, even after a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.websockets import WebSocket, WebSocketDisconnect

from arqd.api import problems
from arqd.api.events import event_json, gap_json
from arqd.api.schemas import dumps, queue_json
from arqd.client import Client
from arqd.core.task import QUEUE_PATTERN, TASK_ID_PATTERN
from arqd.feeds import EVENT_ID, EventFeed, Gap
from arqd.ui.charts import CHART_KINDS, Charts
from arqd.ui.views import VIEWS, LiveView
from arqd.ui.web import Ui, Viewer, same_origin, ui_of

STATS_INTERVAL = 0.2
CHARTS_INTERVAL = 2.0  # seconds: a chart's bar is a minute; it need not move faster
FINISHING = (b"succeeded", b"failed")  # the events a throughput chart counts
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013


class LivePage:
    """One page's socket: events as they come, and the counts after them."""

    def __init__(
        self, websocket: WebSocket, client: Client, feed: EventFeed, charts: Charts | None = None
    ) -> None:
        self.websocket = websocket
        self.client = client
        self.feed = feed
        self.dirty = asyncio.Event()
        self.dirty.set()  # the counts go out at once: a page reconnecting catches up
        self.charts = charts
        self.finished: set[str] = set()  # queues a task finished in since the last charts
        self.finishing = asyncio.Event()

    async def relay(self) -> None:
        async for item in self.feed:
            if isinstance(item, Gap):  # events were missed: the page shows the state anew
                message = {"kind": "gap", **gap_json(item)}
            else:
                message = {"kind": "event", **event_json(item)}
                if item.fields.get(b"event") in FINISHING:
                    self.finished.add(item.queue)
                    self.finishing.set()
            await self.websocket.send_text(dumps(message).decode())
            self.dirty.set()

    async def redraw(self) -> None:
        """The throughput charts of the queues tasks finished in, at most every
        ``CHARTS_INTERVAL`` seconds (each is read again from its per-minute buckets)."""
        charts = self.charts
        assert charts is not None  # started only for a page with charts (_run)
        while True:
            await self.finishing.wait()
            self.finishing.clear()
            queues, self.finished = sorted(self.finished), set()
            drawn = {queue: await charts.draw(self.client, queue) for queue in queues}
            await self.websocket.send_text(dumps({"kind": "charts", "html": drawn}).decode())
            await asyncio.sleep(CHARTS_INTERVAL)

    async def counts(self) -> None:
        while True:
            await self.dirty.wait()
            self.dirty.clear()
            stats = await self.client.stats(self.feed.queue)
            message = {"kind": "stats", "queues": [queue_json(s) for s in stats]}
            await self.websocket.send_text(dumps(message).decode())
            await asyncio.sleep(STATS_INTERVAL)

    async def watch(self) -> None:
        while (await self.websocket.receive())["type"] != "websocket.disconnect":
            pass


async def live(websocket: WebSocket) -> None:
    ui = ui_of(websocket)
    viewer = ui.viewer(websocket)
    if viewer.fresh or not viewer.signed_in or not same_origin(websocket):
        await websocket.close(POLICY_VIOLATION)
        return
    if (view := websocket.query_params.get("view")) is not None:
        await _view(websocket, ui, viewer, view)
        return
    queue = websocket.query_params.get("queue") or None
    last = websocket.query_params.get("last_event_id") or None
    task = websocket.query_params.get("task") or None  # a task's page: its events only
    if (
        (queue and not QUEUE_PATTERN.fullmatch(queue))
        or (last and not EVENT_ID.fullmatch(last))
        or (task and not TASK_ID_PATTERN.fullmatch(task))
    ):
        await websocket.close(POLICY_VIOLATION)
        return
    feed = ui.state.feeds.events(queue, task, last_event_id=last)
    try:
        await feed.start()
    except problems.UNAVAILABLE:
        await websocket.close(TRY_AGAIN_LATER)
        return
    await websocket.accept()
    kind = websocket.query_params.get("charts")
    charts = Charts(ui, viewer, kind) if kind in CHART_KINDS else None
    await _run(LivePage(websocket, ui.client, feed, charts))


async def _view(websocket: WebSocket, ui: Ui, viewer: Viewer, view: str) -> None:
    """A page kept live by its table rendered again (see ``views``)."""
    if view not in VIEWS:
        await websocket.close(POLICY_VIOLATION)
        return
    await websocket.accept()
    try:
        await LiveView(websocket, ui, viewer, view, websocket.query_params).run()
    except WebSocketDisconnect:
        pass
    except problems.UNAVAILABLE:
        with contextlib.suppress(Exception):
            await websocket.close(TRY_AGAIN_LATER)


async def _run(page: LivePage) -> None:
    parts = (page.relay, page.counts, page.watch, *((page.redraw,) if page.charts else ()))
    jobs = [asyncio.create_task(job()) for job in parts]
    done, pending = await asyncio.wait(jobs, return_when=asyncio.FIRST_COMPLETED)
    page.feed.close()
    for job in pending:
        job.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    failed = [job.exception() for job in done if job.exception() is not None]
    if any(isinstance(exc, problems.UNAVAILABLE) for exc in failed):
        with contextlib.suppress(Exception):
            await page.websocket.close(TRY_AGAIN_LATER)
    elif failed and not all(isinstance(exc, WebSocketDisconnect) for exc in failed):
        with contextlib.suppress(Exception):
            await page.websocket.close(1011)
