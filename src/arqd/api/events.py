"""The WebSocket ``/events``: live task events, filtered, resumable, and bounded.

Each connection runs three tasks: a reader that blocks on the queues' event streams and
puts matching events in a bounded buffer, a sender that writes them to the socket, and a
watcher that notices the client leaving. A client is too slow, and closed with code 4008
("too slow: ..."), when it falls more than the buffer (``event_buffer``, 1000) behind, or
when one message cannot be sent to it within ``send_timeout`` (10 s): the socket accepts
nothing more, as when the client stops reading. It can reconnect with ``last_event_id`` and
resume from the capped stream. Events trimmed from the stream before the feed read them are
announced by a ``gap`` message in their place.

What a too-slow client costs the server stays bounded: the buffer; the transport's buffer,
at most its high-water mark (64 KiB) and one message, since a send waits until it is below
the mark; and the close frame, written behind those at once (``ws_protocol``). A client
that reads gets the close and answers it; ``CLOSE_WAIT_SECONDS`` (5 s) after the close was
sent the server aborts the connection if it is still there, dropping what the transport
holds. So a client that stops reading is closed within ``send_timeout`` of its socket
filling up (sooner if the buffer fills first), and gone ``CLOSE_WAIT_SECONDS`` later.

Close codes: 4008 too slow, 1013 Redis unreachable (reconnect later). Bad parameters are
refused before the handshake with a 422 problem, a missing key with 401.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect

from arqd.api import problems
from arqd.api.schemas import dumps
from arqd.api.state import ApiState
from arqd.api.ws_protocol import CLOSE_WAIT_SECONDS
from arqd.core.reports import decode_lines, decode_progress, line_json, progress_json
from arqd.core.task import QUEUE_PATTERN
from arqd.feeds import EVENT_ID, EventFeed, Gap, StreamEvent, SystemFeed

log = logging.getLogger("arqd.api")

TOO_SLOW = 4008
TRY_AGAIN_LATER = 1013

router = APIRouter()


class TooSlow(Exception):
    """The client reads events slower than they happen: its buffer is full, or a message
    could not be sent to it in time (the reason says which; none means the buffer)."""


def event_json(event: StreamEvent) -> dict[str, Any]:
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
    if b"mode" in fields:  # a deduplicated event: the enqueue it refused
        refused = fields[b"refused"].decode()
        message["dedupe"] = {"mode": fields[b"mode"].decode(), "refused_id": refused}
    if b"error" in fields:
        error = orjson.loads(fields[b"error"])
        message["error"] = {"type": error.get("type"), "message": error.get("message")}
    if b"data" in fields:  # progress and log events (see reporting_json)
        message.update(reporting_json(message["event"], fields))
    return message


def reporting_json(event: str, fields: dict[bytes, bytes]) -> dict[str, Any]:
    """A ``progress`` event's progress, or a ``log`` event's lines (and ``more``: how many
    earlier lines of its batch it leaves out; ``GET /tasks/{id}/logs`` has them)."""
    if event == "progress":
        return {"progress": progress_json(decode_progress(fields[b"data"]))}
    lines = [line_json(line) for line in decode_lines(fields[b"data"])]
    return {"lines": lines, "more": int(fields.get(b"more", b"0"))}


def gap_json(gap: Gap, label: str = "queue") -> dict[str, Any]:
    """The message for events trimmed from a capped stream before the feed read them: the
    queue (``label``: "source" for system streams), the last id passed on before them, how
    many were lost (null: unknown, when resuming from an id older than the oldest kept),
    and the id of the oldest entry kept, where the feed goes on."""
    return {
        "event": "gap",
        label: gap.queue,
        "after": gap.after,
        "missed": gap.missed,
        "resumes_at": gap.resumes_at,
    }


class Relay:
    """One client's feed: ``read`` fills a bounded buffer from the client's feed, turning
    each event into its message (a gap into ``gap_json``'s, its ``label`` naming the
    stream); ``send`` writes the buffer to the socket."""

    def __init__(
        self,
        state: ApiState,
        feed: EventFeed | SystemFeed,
        message: Callable[[StreamEvent], Any],
        label: str = "queue",
    ) -> None:
        self.state = state
        self.feed = feed
        self.message = message
        self.label = label
        self.buffer: asyncio.Queue[bytes] = asyncio.Queue(state.event_buffer)

    def stop(self) -> None:
        """End ``read`` at its next turn, even if a cancellation got lost on the way: one
        that lands just as a pooled Redis connection is handed over can be swallowed."""
        self.feed.close()

    async def read(self) -> None:
        async for item in self.feed:
            message = gap_json(item, self.label) if isinstance(item, Gap) else self.message(item)
            try:
                self.buffer.put_nowait(dumps(message))
            except asyncio.QueueFull:
                raise TooSlow from None

    async def send(self, websocket: WebSocket) -> None:
        """Send the buffer's messages in order; each must be sent within ``send_timeout``.
        A send waits only while the server's transport buffer is past its high-water mark;
        cut short, it has written nothing (uvicorn writes a frame only once writable)."""
        limit = self.state.send_timeout
        while True:
            message = (await self.buffer.get()).decode()
            try:
                async with asyncio.timeout(limit):
                    await websocket.send_text(message)
            except TimeoutError:
                raise TooSlow(f"a message waited over {limit:g} s to be sent") from None


async def _watch(websocket: WebSocket) -> None:
    """Return when the client leaves; whatever it sends is ignored."""
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    # Under ``arqd serve`` the close frame is written at once and the server itself ends
    # the connection if the client does not answer (see ws_protocol). Under a server that
    # waits for the socket to be writable first, a client that stopped reading may never
    # allow the close: after the wait, returning drops the connection instead.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(websocket.close(code, reason), CLOSE_WAIT_SECONDS)


@router.websocket("/events")
async def events(
    websocket: WebSocket,
    task_id: Annotated[str | None, Query(max_length=256)] = None,
    queue: Annotated[str | None, Query(pattern=QUEUE_PATTERN.pattern)] = None,
    task_type: Annotated[str | None, Query(alias="type", max_length=128)] = None,
    last_event_id: Annotated[str | None, Query(pattern=EVENT_ID.pattern)] = None,
) -> None:
    """Stream task events as JSON text messages (see docs/api.md for the fields)."""
    state: ApiState = websocket.app.state.arqd
    feed = state.feeds.events(queue, task_id, task_type, last_event_id)
    await run_feed(websocket, Relay(state, feed, event_json))


async def run_feed(websocket: WebSocket, feed: Relay) -> None:
    """Start ``feed``, accept the socket and relay until the client leaves or the feed
    fails. Where the feed starts is fixed before the handshake completes: once a client
    is connected, every later event reaches it."""
    try:
        await feed.feed.start()
    except problems.UNAVAILABLE:
        await websocket.send_denial_response(problems.unavailable())
        return
    await websocket.accept()
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
    if reader in done:
        await _end(websocket, feed, reader.exception())
    elif sender in done and isinstance(sender.exception(), TooSlow):
        await _end(websocket, feed, sender.exception())
    # otherwise the client left, or sending to it failed


async def _end(websocket: WebSocket, feed: Relay, exc: BaseException | None) -> None:
    """Close the socket with the code that says why the feed ended, if the client is owed one."""
    if isinstance(exc, TooSlow):
        why = str(exc) or f"over {feed.buffer.maxsize} events behind"
        log.warning("closing an event feed: the client is too slow: %s", why)
        feed.state.slow_consumers_closed += 1
        await _close(websocket, TOO_SLOW, f"too slow: {why}")
    elif isinstance(exc, problems.UNAVAILABLE):
        await _close(websocket, TRY_AGAIN_LATER, "Redis is unreachable; reconnect later")
    elif exc is not None and not isinstance(exc, WebSocketDisconnect):
        log.error("event feed failed", exc_info=exc)
        await _close(websocket, 1011, "internal error")
