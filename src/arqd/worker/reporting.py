"""Progress and log lines of running attempts, written to Redis while the attempt runs.

A handler may call ``ctx.progress`` or ``ctx.log`` (or ``logging``) as often as it likes,
from the event loop or from a sync handler's thread: each call only keeps the newest
progress and appends its line under a lock. One writer per attempt, on the loop, sends
what was kept in one ``progress.lua`` call (``Reports.write``), at most one call in flight
and one every ``INTERVAL`` seconds; so 10,000 calls in a second make about
``1 / INTERVAL`` writes, and the last progress is always the one stored. The attempt's
last write is made when it ends, before its answer (``AttemptReport.close``). An
attempt that never reports costs nothing: its report is made at its first call.

Lines are written every ``INTERVAL`` while the task runs, so a worker killed mid-task
leaves them in Redis. After the lease is lost the script refuses the writes, and the
report drops whatever comes next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from arqd.core.reports import encode_line, encode_progress

if TYPE_CHECKING:
    from arqd.worker.attempt import TaskContext
    from arqd.worker.storage import WorkerStore

log = logging.getLogger("arqd.worker")

INTERVAL = 0.15  # seconds between two writes of one attempt
OUTAGE_PAUSE = 1.0  # seconds a writer waits after a write Redis did not take
CURRENT: ContextVar[TaskContext | None] = ContextVar("arqd_attempt", default=None)


class Reporting:
    """Makes each attempt's report, on its first call, for one worker's runner."""

    def __init__(self, store: WorkerStore, loop: asyncio.AbstractEventLoop) -> None:
        self.store = store
        self.loop = loop
        self.settings = store.settings
        self._lock = threading.Lock()

    def report_of(self, context: TaskContext) -> AttemptReport:
        """The attempt's report, made once (a sync handler may call from several threads)."""
        with self._lock:
            if context.report is None:
                context.report = AttemptReport(self, context)
            return context.report


class AttemptReport:
    """What one attempt reported and has not written yet, and its writer."""

    def __init__(self, reporting: Reporting, context: TaskContext) -> None:
        self.reporting = reporting
        self.context = context
        self._lock = threading.Lock()
        self._progress: bytes | None = None
        self._lines: list[bytes] = []
        self._armed = False  # a writer runs, or its start is on its way to the loop
        self._closed = False  # the attempt ended: later calls are dropped
        self._refused = False  # the lease was lost: nothing more is written
        self._logged = False  # a line was logged: the last write sets the lists' TTL
        self._writer: asyncio.Task[None] | None = None
        self._hurry = asyncio.Event()
        self._next = 0.0  # monotonic time of the next write allowed
        self.writes = 0  # calls made to Redis (for tests and benchmarks)

    def progress(self, value: Any, message: str | None) -> None:
        ms = int(time.time() * 1000)
        data = encode_progress(value, message, self.context.attempt, ms)
        with self._lock:
            if self._closed or self._refused:
                return
            self._progress = data
            start = self._arm()
        if start:
            self.reporting.loop.call_soon_threadsafe(self._start)

    def log(self, level: str, message: str) -> None:
        s = self.reporting.settings
        ms = int(time.time() * 1000)
        line = encode_line(self.context.attempt, ms, level, message, s.task_log_line_bytes)
        with self._lock:
            if self._closed or self._refused:
                return
            self._lines.append(line)
            self._logged = True
            if len(self._lines) > s.task_log_lines:  # the list would trim it anyway
                del self._lines[0]
            start = self._arm()
        if start:
            self.reporting.loop.call_soon_threadsafe(self._start)

    def _arm(self) -> bool:
        """Under the lock: True when no writer runs, so the caller must start one."""
        if self._armed:
            return False
        self._armed = True
        return True

    def _take(self) -> tuple[bytes | None, list[bytes]]:
        with self._lock:
            progress, lines = self._progress, self._lines
            self._progress, self._lines = None, []
            return progress, lines

    def _start(self) -> None:
        if self._closed:
            return
        self._writer = self.reporting.loop.create_task(self._write_loop())

    async def _write_loop(self) -> None:
        """Write what was kept, at most every ``INTERVAL``, until nothing is left."""
        while True:
            wait = self._next - time.monotonic()
            if wait > 0 and not self._closed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._hurry.wait(), wait)
            with self._lock:
                idle = self._progress is None and not self._lines
                if idle or self._closed or self._refused:
                    self._armed = False  # what is left goes in the last write (close)
                    return
            progress, lines = self._take()
            self._next = time.monotonic() + INTERVAL
            if not await self._send(progress, lines, None):
                self._keep(progress, lines)
                self._next = time.monotonic() + OUTAGE_PAUSE

    def _keep(self, progress: bytes | None, lines: list[bytes]) -> None:
        """Put back what a failed write did not store (newer progress wins)."""
        with self._lock:
            if self._progress is None:
                self._progress = progress
            self._lines[:0] = lines
            del self._lines[: max(0, len(self._lines) - self.reporting.settings.task_log_lines)]

    async def _send(self, progress: bytes | None, lines: list[bytes], outcome: str | None) -> bool:
        """One write; False when Redis did not take it (and it may be tried again)."""
        c = self.context
        self.writes += 1
        try:
            written = await self.reporting.store.report(
                c.queue, c.task_id, c.token, progress, lines, outcome
            )
        except (RedisError, OSError) as exc:
            log.warning("task %s: progress and logs not written: %s", c.task_id, exc)
            return False
        except Exception:  # a report must never cost the attempt its answer (nor loop)
            log.exception("task %s: progress and logs not written", c.task_id)
            self._refused = True
            return True
        if not written:
            self._refused = True
            log.warning("task %s: progress and logs refused, the lease was lost", c.task_id)
        return True

    async def close(self, outcome: str | None) -> None:
        """The attempt ended with ``outcome`` (None: its lease was lost): write what is
        left, and give the task's log lists the TTL of the task as the answer leaves it."""
        with self._lock:
            self._closed = True
        self._hurry.set()
        if self._writer is not None:
            await self._writer
        if outcome is None or self._refused:
            return
        progress, lines = self._take()
        if progress is not None or self._logged:  # progress alone has no list to expire
            await self._send(progress, lines, outcome)


class AttemptLogHandler(logging.Handler):
    """On the root logger while a worker runs: a record logged inside an attempt (a
    handler's ``logging`` call, in its task or its thread) becomes a line of its log.
    arqd's own records are not the task's. Where logging is not configured, a record this
    handler alone would see still reaches ``logging.lastResort`` (stderr), as it would
    without it."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    def handle(self, record: logging.LogRecord) -> bool:  # no handler lock: the report's
        context = CURRENT.get()
        if context is not None and context.reporting is not None and not _arqd_own(record.name):
            try:
                context.log(self.format(record), record.levelname)
            except Exception:  # a bad record (its arguments do not fit): as logging does
                self.handleError(record)
        last = logging.lastResort
        if last is not None and record.levelno >= last.level and self._alone(record.name):
            last.handle(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)

    def _alone(self, name: str) -> bool:
        """No other handler on the way from the record's logger to the root."""
        if logging.root.handlers != [self]:
            return False
        logger: logging.Logger | None = logging.getLogger(name)
        while logger is not None and logger is not logging.root:
            if logger.handlers:
                return False
            logger = logger.parent
        return True


def _arqd_own(name: str) -> bool:
    return name == "arqd" or name.startswith("arqd.")


class LogCapture:
    """Keeps one ``AttemptLogHandler`` on the root logger while any worker runs."""

    _lock = threading.Lock()
    _users = 0
    handler = AttemptLogHandler()

    @classmethod
    def start(cls) -> None:
        with cls._lock:
            cls._users += 1
            logging.getLogger().addHandler(cls.handler)  # once: adding it again does nothing

    @classmethod
    def stop(cls) -> None:
        with cls._lock:
            cls._users = max(0, cls._users - 1)
            if cls._users == 0:
                logging.getLogger().removeHandler(cls.handler)
