"""Queue control: pausing and resuming a queue, or one task type of it.

What is paused is marked in the queue's set of what holds tasks back
(``keys.Keys.held_back``: ``|*`` for the whole queue, ``|TYPE`` for a type, beside the
types whose breaker is open), which the dequeue script reads in one command a call;
why, when and by whom in the ``pauses`` hash (``keys.Keys.pauses``), a small JSON record
each. Pausing and resuming are a script each
(``pause.lua``, ``resume.lua``), which emit ``queue_paused`` and ``queue_resumed`` on the
queue's event stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from arqd.core.settings import Settings
from arqd.store.codec import text
from arqd.store.keys import Keys
from arqd.store.scripts import Scripts

WHOLE_QUEUE = "*"  # the field of a pause of the whole queue (no task type is named so)


@dataclass(frozen=True, slots=True)
class Pause:
    """One pause: of the whole queue (``task_type`` None) or of one task type."""

    task_type: str | None
    reason: str
    at: datetime
    by: str | None = None


class Control:
    """Pause and resume (one script call each), and what is paused (one ``HGETALL``)."""

    def __init__(self, scripts: Scripts, keys: Keys, settings: Settings) -> None:
        self.scripts = scripts
        self.keys = keys
        self.settings = settings

    async def pause(self, queue: str, task_type: str | None, reason: str, by: str = "") -> bool:
        """Pause ``queue`` (``task_type`` None) or one of its types; False when it was
        paused already (its reason is replaced)."""
        what = task_type or WHOLE_QUEUE
        keys = [self.keys.queue(queue)]
        args = (what, reason, by, self.settings.events_max)
        return bool(await self.scripts.run("pause", keys, *args))

    async def resume(self, queue: str, task_type: str | None, reason: str = "") -> bool:
        """Resume ``queue`` or one of its types, and wake a worker; False when it was not
        paused. A type's held tasks are ready again at once."""
        what = task_type or WHOLE_QUEUE
        keys = [self.keys.queue(queue)]
        return bool(await self.scripts.run("resume", keys, what, reason, self.settings.events_max))

    async def paused(self, queue: str) -> list[Pause]:
        """The pauses of ``queue``: the whole queue's first, then its types' by name."""
        found = await self.scripts.hash(self.keys.pauses(queue))
        pauses = [_pause(text(what), value) for what, value in found.items()]
        return sorted(pauses, key=lambda p: (p.task_type is not None, p.task_type or ""))


def _pause(what: str, value: bytes | str) -> Pause:
    record = orjson.loads(value)
    at = datetime.fromtimestamp(int(record["at"]) / 1000, UTC)
    task_type = None if what == WHOLE_QUEUE else what
    return Pause(task_type, str(record.get("reason", "")), at, record.get("by"))
