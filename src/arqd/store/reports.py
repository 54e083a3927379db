"""What running attempts report: progress and log lines (``progress.lua``), and reading a
task's log lines back.

Each attempt's lines are a list of their own (``Keys.task_log``), capped at
``ARQD_TASK_LOG_LINES`` (the newest kept). The lists expire with their task: while an
attempt runs, each write gives its list the longest TTL a finished task can have, so the
lines of a worker killed mid-task outlive the task's next attempts; the attempt's last
write, just before its answer, gives every attempt's list the TTL of the task as that
answer leaves it (its result TTL, or the dead-letter TTL). A retried task keeps the long
TTL until an attempt that logged finishes it.
"""

from __future__ import annotations

from collections.abc import Sequence

from arqd.core.errors import TaskNotFound
from arqd.core.reports import LogLine, decode_line
from arqd.core.settings import Settings
from arqd.store.keys import Keys
from arqd.store.scripts import Scripts
from arqd.store.tasks import Tasks

RUNNING = ""  # a write while the attempt runs (see progress.lua, ARGV[7])


class Reports:
    """Progress and log writes of running attempts, fenced by their lease token."""

    def __init__(self, scripts: Scripts, keys: Keys, settings: Settings, tasks: Tasks) -> None:
        self.scripts = scripts
        self.keys = keys
        self.settings = settings
        self.tasks = tasks

    async def write(
        self,
        queue: str,
        task_id: str,
        token: bytes,
        progress: bytes | None,
        lines: Sequence[bytes],
        outcome: str | None = None,
    ) -> bool:
        """Store the attempt's new progress and lines; False when its lease is no longer
        the task's (nothing was written). ``outcome``: the attempt's answer, for its last
        write (see ``lists_ttl``)."""
        s = self.settings
        ttl, kind = lists_ttl(s, outcome)
        reply = await self.scripts.run(
            "progress",
            [self.keys.queue(queue)],
            s.events_max,
            task_id,
            token,
            progress or b"",
            s.task_log_lines,
            ttl,
            kind,
            *lines,
        )
        return bool(reply)

    async def read(self, task_id: str, queue: str | None = None) -> list[LogLine]:
        """The lines kept of each attempt of a task, oldest first (``Client.logs``);
        raises TaskNotFound when there is no such task (or it expired)."""
        task = await self.tasks.get(task_id, queue)
        if task is None:
            raise TaskNotFound(task_id)
        return await self.logs(task.queue, task.id, task.attempts)

    async def logs(self, queue: str, task_id: str, attempts: int) -> list[LogLine]:
        """The lines kept of attempts 1 to ``attempts`` of a task, oldest first."""
        pipe = self.scripts.redis.pipeline(transaction=False)
        for attempt in range(1, attempts + 1):
            pipe.lrange(self.keys.task_log(queue, task_id, attempt), 0, -1)
        found = await pipe.execute() if attempts else []
        return [decode_line(raw) for lines in found for raw in lines]


def lists_ttl(settings: Settings, outcome: str | None) -> tuple[int, str]:
    """The TTL (ms) a write gives the task's log lists, and its kind for progress.lua."""
    s = settings
    if outcome in ("succeeded", "cancelled"):
        return s.result_ttl, "result"
    if outcome == "failed":
        return s.failed_ttl, "end"
    return max(s.result_ttl, s.failed_ttl), RUNNING
