"""Queue control for producers and operators: pause and resume a queue, or one task type
of it, with a reason (``Client.queues``).

After ``pause`` returns, no task of what it paused starts: every dequeue reads the pause
first (``lua/dequeue.lua``). Running tasks finish; delayed tasks still fall due into the
paused queue (ready, not leased); tasks of a paused type are held. ``resume`` wakes a
worker at once for the backlog. Both are safe to call twice: a second pause replaces the
reason, a resume of what is not paused changes nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from arqd.core.errors import InvalidTask
from arqd.core.task import check_name, check_queue
from arqd.store.control import Pause
from arqd.store.store import Store

__all__ = ["MAX_REASON", "Pause", "PauseState", "QueueControl"]

MAX_REASON = 500  # characters: a reason is a note for people, not a document


@dataclass(frozen=True, slots=True)
class PauseState:
    """What of one queue is paused: the whole queue (``whole``) and task types."""

    queue: str
    whole: Pause | None
    types: tuple[Pause, ...]

    @property
    def paused(self) -> bool:
        """The whole queue is paused (some types may be, with the queue running)."""
        return self.whole is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``paused``, ``reason``, ``paused_at``, ``paused_by``, and the
        ``paused_types`` (each its type, reason, paused_at and paused_by)."""
        return {"queue": self.queue, "paused": self.paused, **_fields(self.whole)} | {
            "paused_types": [{"type": p.task_type, **_fields(p)} for p in self.types]
        }


def _fields(pause: Pause | None) -> dict[str, Any]:
    if pause is None:
        return {"reason": None, "paused_at": None, "paused_by": None}
    return {"reason": pause.reason, "paused_at": pause.at, "paused_by": pause.by}


class QueueControl:
    """``client.queues``: pause, resume, and what is paused."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def pause(
        self, queue: str, task_type: str | None = None, reason: str = "", by: str = ""
    ) -> PauseState:
        """Pause ``queue``, or only its tasks of ``task_type``; ``by`` names who did (an
        operator, a key's digest). Returns what is paused of the queue now."""
        queue, task_type = _target(queue, task_type)
        await self.store.control.pause(queue, task_type, _reason(reason), by)
        return await self.paused(queue)

    async def resume(
        self, queue: str, task_type: str | None = None, reason: str = ""
    ) -> PauseState:
        """Resume ``queue`` (or ``task_type`` of it): its backlog starts at once."""
        queue, task_type = _target(queue, task_type)
        await self.store.control.resume(queue, task_type, _reason(reason))
        return await self.paused(queue)

    async def paused(self, queue: str) -> PauseState:
        """What of ``queue`` is paused, and why."""
        pauses = await self.store.control.paused(check_queue(queue))
        whole = next((p for p in pauses if p.task_type is None), None)
        return PauseState(queue, whole, tuple(p for p in pauses if p.task_type is not None))

    async def states(self, queues: list[str]) -> list[PauseState]:
        """``paused`` of each of ``queues``, read at once."""
        return list(await asyncio.gather(*(self.paused(q) for q in queues)))


def _target(queue: str, task_type: str | None) -> tuple[str, str | None]:
    """The queue and task type checked (InvalidTask names what is wrong)."""
    return check_queue(queue), None if task_type is None else check_name(task_type)


def _reason(reason: str) -> str:
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise InvalidTask(f"reason must be text of at most {MAX_REASON} characters")
    return reason
