"""Structured logs: one JSON object a line (ARQD_LOG_FORMAT=json) or readable text.

Records may carry ``task_id``, ``task_type``, ``queue``, ``attempt`` and ``outcome``
(pass them in ``extra``); the trace id of the current span is added when there is one.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime

import orjson

FIELDS = ("task_id", "task_type", "queue", "attempt", "outcome", "worker")


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = value
        entry.update(_current_span())
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def _current_span() -> dict[str, str]:
    """The ids of the current span, if any. The OpenTelemetry API is looked up, not
    imported: until something imports it no span can be current, and a worker that does
    not trace keeps it out of its memory (bench.compare, worker peak RSS)."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return {}
    span = trace.get_current_span().get_span_context()
    if not span.is_valid:
        return {}
    return {"trace_id": format(span.trace_id, "032x"), "span_id": format(span.span_id, "016x")}


class TextFormatter(logging.Formatter):
    """Readable lines, with the task fields appended as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """The default ``2026-11-29 14:52:35,123``, its date and time part made once a
        second (``strftime`` on every line costs a worker a few µs a task)."""
        second = int(record.created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second))
        return f"{self._stamp},{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = [f"{n}={record.__dict__[n]}" for n in FIELDS if record.__dict__.get(n)]
        return f"{line} {' '.join(extras)}" if extras else line


def setup_logging(level: str, fmt: str) -> None:
    """Configure the root logger once for a process.

    Neither format shows the calling file and line, the thread or the process, so records
    do not collect them: the frame walk and lookups cost every record (see "Optimization"
    in the logging HOWTO), and a worker writes one record per task at the default level.
    """
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    setattr(logging, "_srcfile", None)  # noqa: B010 (the HOWTO's switch for caller info)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
