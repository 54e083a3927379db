"""A task page's progress bar and log tail (ui.js draws the same from live events)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from arqd.core.reports import Progress


@dataclass(frozen=True, slots=True)
class ProgressView:
    """The progress as the page shows it: a bar when the value is a fraction."""

    fraction: float | None  # 0 to 1; None: not a fraction (the text shows the value)
    text: str
    message: str
    attempt: int
    updated_at: datetime


def progress_view(progress: Progress | None) -> ProgressView | None:
    if progress is None:
        return None
    value = progress.value
    fraction = _fraction(value)
    text = f"{round(fraction * 100)}%" if fraction is not None else _json(value)
    return ProgressView(
        fraction, text, progress.message or "", progress.attempt, progress.updated_at
    )


def _fraction(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 <= value <= 1 else None


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()
