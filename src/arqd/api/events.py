"""The WebSocket ``/events``: live task events, filtered, resumable, and bounded.

Each connection runs three tasks: a reader that blocks on the queues' event streams and
puts matching events in a bounded buffer, a sender that writes them to the socket, and a
watcher that notices the client leaving. A client that falls more than the buffer behind
is closed with code 4008 rather than letting the buffer grow; it can reconnect with
``last_event_id`` and resume from the capped stream.

Close codes: 4008 too slow, 1013 Redis unreachable (reconnect later). Bad parameters are
refused before the handshake with a 422 problem, a missing key with 401.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect

from arqd.api import problems
from arqd.api.schemas import dumps
from arqd.api.state import ApiState
from arqd.core.task import QUEUE_PATTERN
from arqd.store import events as streams

log = logging.getLogger("arqd.api")

TOO_SLOW = 4008
TRY_AGAIN_LATER = 1013
BLOCK_MS = 1000  # well under the API's Redis socket timeout
RELIST_SECONDS = 2.0  # how soon a feed on all queues notices a new queue
NO_QUEUE_POLL_SECONDS = 0.25  # while there is no queue at all, there is nothing to block on
CLOSE_WAIT_SECONDS = 5.0

router = APIRouter()


class TooSlow(Exception):
    """The client's buffer is full: it reads events slower than they happen."""


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a client asked for, beyond its queue; None matches anything."""

    task_id: str | None
    task_type: str | None

    def matches(self, event: streams.StreamEvent) -> bool:
        fields = event.fields
        return (self.task_id is None or fields.get(b"task", b"").decode() == self.task_id) and (
            self.task_type is None or fields.get(b"type", b"").decode() == self.task_type
        )


def event_json(event: streams.StreamEvent) -> dict[str, Any]:
    """The message for one stream entry (fields written by ``emit`` in common.lua)."""
    fields = event.fields
    ms = int(event.id.partition("-")[0])
    message: dict[str, Any] = {
        "event_id": event.id,
        "task_id": fields[b"task"].decode(),
        "type": fields[b"type"].decode(),
        "event": fields[b"event"].decode(),
        "queue": event.queue,
        "status": event.status,
        "attempt": int(fields.get(b"attempt", b"0")),
        "timestamp": datetime.fromtimestamp(ms / 1000, UTC),
    }
    if b"error" in fields:
        error = orjson.loads(fields[b"error"])
        message["error"] = {"type": error.get("type"), "message": error.get("message")}
    return message


class Feed:
    """One client's feed: ``read`` fills a bounded buffer from streams, read from their
    positions (stream name -> last id sent); ``send`` writes it to the socket."""

    def __init__(self, state: ApiState, positions: dict[str, str]) -> None:
        self.state = state
        self.positions = positions
        self.buffer: asyncio.Queue[bytes] = asyncio.Queue(state.event_buffer)
        self.running = True

    def stop(self) -> None:
        """End ``read`` at its next turn, even if a cancellation got lost on the way: one
        that lands just as a pooled Redis connection is handed over can be swallowed."""
        self.running = False

    async def read(self) -> None:
        raise NotImplementedError

    def put(self, message: dict[str, Any]) -> None:
        """Buffer one message; TooSlow when the client is a whole buffer behind."""
        try:
            self.buffer.put_nowait(dumps(message))
        except asyncio.QueueFull:
            raise TooSlow from None

    async def send(self, websocket: WebSocket) -> None:
        while True:
            await websocket.send_text((await self.buffer.get()).decode())


class EventFeed(Feed):
    """Task events of the queues in ``positions`` (all queues, new ones too, if asked)."""

    def __init__(
        self, state: ApiState, wanted: EventFilter, positions: dict[str, str], all_queues: bool
    ) -> None:
        super().__init__(state, positions)
        self.wanted = wanted
        self.all_queues = all_queues
        self._listed_at = time.monotonic()

    async def read(self) -> None:
        store = self.state.feeds
        while self.running:
            await self._relist()
            if not self.positions:
                await asyncio.sleep(NO_QUEUE_POLL_SECONDS)
                continue
            for event in await streams.read_after(store, self.positions, BLOCK_MS):
                self.positions[event.queue] = event.id
                if self.wanted.matches(event):
                    self.put(event_json(event))

    async def _relist(self) -> None:
        due = not self.positions or time.monotonic() - self._listed_at >= RELIST_SECONDS
        if not (self.all_queues and due):
            return
        self._listed_at = time.monotonic()
        for queue in await self.state.feeds.queues():
            # A queue that appeared after the client connected: all its events are new.
            self.positions.setdefault(queue, streams.START)


async def _watch(websocket: WebSocket) -> None:
    """Return when the client leaves; whatever it sends is ignored."""
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


async def _start_positions(
    state: ApiState, queue: str | None, last_event_id: str | None
) -> dict[str, str]:
    queues = [queue] if queue else await state.feeds.queues()
    if last_event_id is None:
        return await streams.newest_ids(state.feeds, queues)
    if queue is None:
        # Each queue's stream numbers its own events, so another queue may hold an event
        # with this very id that the client has not seen: resume at-least-once, from just
        # before it (the client's last event comes again; dedupe on queue and event_id).
        last_event_id = streams.just_before(last_event_id)
    return dict.fromkeys(queues, last_event_id)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    # Closing waits until the socket can be written to; a client that stopped reading
    # may never allow that, and then returning drops the connection instead.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(websocket.close(code, reason), CLOSE_WAIT_SECONDS)


@router.websocket("/events")
async def events(
    websocket: WebSocket,
    task_id: Annotated[str | None, Query(max_length=256)] = None,
    queue: Annotated[str | None, Query(pattern=QUEUE_PATTERN.pattern)] = None,
    task_type: Annotated[str | None, Query(alias="type", max_length=128)] = None,
    last_event_id: Annotated[str | None, Query(pattern=streams.EVENT_ID.pattern)] = None,
) -> None:
    """Stream task events as JSON text messages (see docs/api.md for the fields)."""
    state: ApiState = websocket.app.state.arqd
    try:
        positions = await _start_positions(state, queue, last_event_id)
    except problems.UNAVAILABLE:
        await websocket.send_denial_response(problems.unavailable())
        return
    # The positions are fixed before the handshake completes: once a client is connected,
    # every later event reaches it.
    await websocket.accept()
    feed = EventFeed(state, EventFilter(task_id, task_type), positions, queue is None)
    await run_feed(websocket, feed)


async def run_feed(websocket: WebSocket, feed: Feed) -> None:
    """Run ``feed`` on an accepted socket until the client leaves or the feed fails."""
    reader = asyncio.create_task(feed.read())
    sender = asyncio.create_task(feed.send(websocket))
    watcher = asyncio.create_task(_watch(websocket))
    done, pending = await asyncio.wait(
        {reader, sender, watcher}, return_when=asyncio.FIRST_COMPLETED
    )
    feed.stop()
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if reader not in done:
        return  # the client left, or sending to it failed
    exc = reader.exception()
    if isinstance(exc, TooSlow):
        limit = feed.buffer.maxsize
        log.warning("closing an event feed: the client fell %d events behind", limit)
        feed.state.slow_consumers_closed += 1
        await _close(websocket, TOO_SLOW, f"too slow: over {limit} events behind")
    elif isinstance(exc, problems.UNAVAILABLE):
        await _close(websocket, TRY_AGAIN_LATER, "Redis is unreachable; reconnect later")
    elif exc is not None and not isinstance(exc, WebSocketDisconnect):
        log.error("event feed failed", exc_info=exc)
        await _close(websocket, 1011, "internal error")
