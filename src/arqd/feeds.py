"""Live event feeds a client follows: task events over one queue or all, and the system
streams, each resumable from the last event id seen.

A feed fixes where it starts when ``start()`` is awaited (iterating starts it too), so
every event after that moment reaches it. Resuming over every queue is at-least-once:
each queue's stream numbers its own events, so another queue may hold an event with the
very id the client saw last; the feed resumes just before it (dedupe on queue and id).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from arqd.store.events import EVENT_ID, START, SYSTEM_SOURCES, StreamEvent, just_before
from arqd.store.store import Store

__all__ = ["EVENT_ID", "SYSTEM_SOURCES", "EventFeed", "EventFilter", "StreamEvent", "SystemFeed"]

BLOCK_MS = 1000  # each read blocks at most this long, so a closed feed ends soon
RELIST_SECONDS = 2.0  # how soon a feed over every queue notices a new queue
NO_QUEUE_POLL_SECONDS = 0.25  # while there is no queue at all, there is nothing to block on


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which task events a feed passes on; None matches anything."""

    task_id: str | None = None
    task_type: str | None = None

    def matches(self, event: StreamEvent) -> bool:
        fields = event.fields
        return (self.task_id is None or fields.get(b"task", b"").decode() == self.task_id) and (
            self.task_type is None or fields.get(b"type", b"").decode() == self.task_type
        )


class _Feed:
    """Positions (label -> last id passed on) and the loop that reads after them."""

    def __init__(self, store: Store, last_event_id: str | None) -> None:
        self.store = store
        self.last_event_id = last_event_id
        self.positions: dict[str, str] | None = None
        self.running = True

    async def start(self) -> None:
        if self.positions is None:
            self.positions = await self._start_positions()

    def close(self) -> None:
        """End the iteration at its next turn."""
        self.running = False

    async def __aiter__(self) -> AsyncIterator[StreamEvent]:
        await self.start()
        assert self.positions is not None
        while self.running:
            for event in await self._read(self.positions):
                self.positions[event.queue] = event.id
                if self._wanted(event):
                    yield event

    async def _start_positions(self) -> dict[str, str]:
        raise NotImplementedError

    async def _read(self, positions: dict[str, str]) -> list[StreamEvent]:
        raise NotImplementedError

    def _wanted(self, event: StreamEvent) -> bool:
        return True


class EventFeed(_Feed):
    """Task events of ``queue``, or of every queue (new ones too) when None."""

    def __init__(
        self,
        store: Store,
        queue: str | None = None,
        wanted: EventFilter | None = None,
        last_event_id: str | None = None,
    ) -> None:
        super().__init__(store, last_event_id)
        self.queue = queue
        self.wanted = wanted or EventFilter()
        self._listed_at = time.monotonic()

    async def _start_positions(self) -> dict[str, str]:
        queues = [self.queue] if self.queue else await self.store.tasks.queues()
        last = self.last_event_id
        if last is None:
            return await self.store.events.newest(queues)
        return dict.fromkeys(queues, last if self.queue else just_before(last))

    async def _read(self, positions: dict[str, str]) -> list[StreamEvent]:
        await self._relist(positions)
        if not positions:
            await asyncio.sleep(NO_QUEUE_POLL_SECONDS)
            return []
        return await self.store.events.read_after(positions, BLOCK_MS)

    async def _relist(self, positions: dict[str, str]) -> None:
        due = not positions or time.monotonic() - self._listed_at >= RELIST_SECONDS
        if self.queue is not None or not due:
            return
        self._listed_at = time.monotonic()
        for queue in await self.store.tasks.queues():
            # A queue that appeared after the feed started: all its events are new.
            positions.setdefault(queue, START)

    def _wanted(self, event: StreamEvent) -> bool:
        return self.wanted.matches(event)


class SystemFeed(_Feed):
    """Named breakers' transitions and rate-limit refusals, by source (SYSTEM_SOURCES)."""

    def __init__(
        self,
        store: Store,
        sources: Sequence[str] = SYSTEM_SOURCES,
        last_event_id: str | None = None,
    ) -> None:
        super().__init__(store, last_event_id)
        self.sources = list(sources)

    async def _start_positions(self) -> dict[str, str]:
        if self.last_event_id is not None:
            return dict.fromkeys(self.sources, self.last_event_id)
        return await self.store.events.newest_system(self.sources)

    async def _read(self, positions: dict[str, str]) -> list[StreamEvent]:
        return await self.store.events.read_system_after(positions, BLOCK_MS)
