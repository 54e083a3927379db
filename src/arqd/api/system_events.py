"""The WebSocket ``/events/system``: what happens outside any queue, live and resumable.

Two sources, each a capped Redis stream: ``breaker`` (named circuit breakers opening,
closing and being reset; task types' breakers report on their queue's ``/events``) and
``rate_limit`` (requests the HTTP rate limit refused, and addresses refused for too many
wrong API keys, with ``scope`` "auth"). Same contract as ``/events``: resume
with ``last_event_id``, and a client that falls behind is closed with 4008.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, WebSocket

from arqd.api.events import Relay, run_feed
from arqd.api.state import ApiState
from arqd.feeds import EVENT_ID, SYSTEM_SOURCES, StreamEvent

NUMBERS = frozenset({"state", "limit", "retry_after_ms"})

router = APIRouter()


def system_event_json(event: StreamEvent) -> dict[str, Any]:
    """The message for one entry: its source, id and time, then the entry's own fields."""
    ms = int(event.id.partition("-")[0])
    message: dict[str, Any] = {
        "event_id": event.id,
        "source": event.queue,
        "timestamp": datetime.fromtimestamp(ms / 1000, UTC),
    }
    for name, value in event.fields.items():
        field = name.decode()
        message[field] = int(value) if field in NUMBERS else value.decode()
    return message


@router.websocket("/events/system")
async def system_events(
    websocket: WebSocket,
    source: Annotated[Literal["breaker", "rate_limit"] | None, Query()] = None,
    last_event_id: Annotated[str | None, Query(pattern=EVENT_ID.pattern)] = None,
) -> None:
    """Stream breaker transitions and rate-limit refusals as JSON text messages."""
    state: ApiState = websocket.app.state.arqd
    sources = [source] if source else list(SYSTEM_SOURCES)
    feed = state.feeds.system_events(sources, last_event_id)
    await run_feed(websocket, Relay(state, feed, system_event_json, label="source"))
