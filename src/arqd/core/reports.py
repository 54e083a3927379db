"""What a running attempt reports: its progress and its log lines. Pure: no I/O.

Both travel as JSON: the progress is a field of the task's hash (``pg``) and the data of
a ``progress`` event; each log line is an entry of the attempt's capped list and, in
batches, the data of a ``log`` event. Times are ms since the epoch on the wire, datetimes
here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

ELLIPSIS = "…"  # ends a message cut to its byte cap (3 bytes in UTF-8)
MAX_PROGRESS_BYTES = 65_536  # a progress is written every 150 ms: it stays small


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a task's attempt says it got: ``value`` (a fraction, or any JSON) and an
    optional ``message``; the attempt that said it, and when (the worker's clock)."""

    value: Any
    message: str | None
    attempt: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line an attempt logged (``ctx.log``, or ``logging`` inside the handler)."""

    attempt: int
    time: datetime
    level: str
    message: str


def encode_progress(value: Any, message: str | None, attempt: int, ms: int) -> bytes:
    """The progress as stored; raises TypeError when ``value`` is not JSON, ValueError
    when it takes more than ``MAX_PROGRESS_BYTES``."""
    try:
        data = orjson.dumps({"value": value, "message": message, "attempt": attempt, "time": ms})
    except orjson.JSONEncodeError as exc:
        raise TypeError(f"progress must be JSON: {exc}") from None
    if len(data) > MAX_PROGRESS_BYTES:
        raise ValueError(f"progress of {len(data)} bytes: keep it under {MAX_PROGRESS_BYTES}")
    return data


def decode_progress(raw: bytes | None) -> Progress | None:
    if not raw:
        return None
    data = orjson.loads(raw)
    return Progress(data["value"], data.get("message"), int(data["attempt"]), _time(data["time"]))


def encode_line(attempt: int, ms: int, level: str, message: str, max_bytes: int) -> bytes:
    """One log line as stored, its message cut to ``max_bytes`` of UTF-8."""
    return orjson.dumps(
        {"attempt": attempt, "time": ms, "level": level, "message": cut(message, max_bytes)}
    )


def decode_line(raw: bytes | dict[str, Any]) -> LogLine:
    data = orjson.loads(raw) if isinstance(raw, bytes) else raw
    return LogLine(int(data["attempt"]), _time(data["time"]), data["level"], data["message"])


def decode_lines(raw: bytes) -> list[LogLine]:
    """The lines of a ``log`` event (a JSON array of lines)."""
    return [decode_line(item) for item in orjson.loads(raw)]


def cut(message: str, max_bytes: int) -> str:
    """``message`` if it fits in ``max_bytes`` of UTF-8; else its start and an ellipsis."""
    data = message.encode("utf-8", "replace")
    if len(data) <= max_bytes:
        return message
    room = max(0, max_bytes - len(ELLIPSIS.encode()))
    return data[:room].decode("utf-8", "ignore") + ELLIPSIS


def progress_json(progress: Progress | None) -> dict[str, Any] | None:
    """The progress as the API shows it (``dumps`` writes the datetime)."""
    if progress is None:
        return None
    return {
        "value": progress.value,
        "message": progress.message,
        "attempt": progress.attempt,
        "updated_at": progress.updated_at,
    }


def line_json(line: LogLine) -> dict[str, Any]:
    """A log line as the API shows it."""
    return {
        "attempt": line.attempt,
        "time": line.time,
        "level": line.level,
        "message": line.message,
    }


def _time(ms: int | float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
