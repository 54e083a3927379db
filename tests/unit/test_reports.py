"""Progress and log lines as stored and shown: pure, no Redis."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from arqd.core.reports import (
    MAX_PROGRESS_BYTES,
    Progress,
    cut,
    decode_line,
    decode_progress,
    encode_line,
    encode_progress,
)
from arqd.ui.reports import progress_view

WHEN = datetime(2026, 12, 6, 17, 0, 0, 123000, tzinfo=UTC)
MS = int(WHEN.timestamp() * 1000)


def test_progress_round_trips() -> None:
    raw = encode_progress({"done": 3}, "three", 2, MS)
    assert decode_progress(raw) == Progress({"done": 3}, "three", 2, WHEN)
    assert decode_progress(None) is None


def test_progress_must_be_small_json() -> None:
    with pytest.raises(TypeError, match="JSON"):
        encode_progress(object(), None, 1, MS)
    with pytest.raises(ValueError, match="bytes"):
        encode_progress("x" * MAX_PROGRESS_BYTES, None, 1, MS)


def test_a_line_round_trips_cut_to_its_byte_cap() -> None:
    line = decode_line(encode_line(1, MS, "WARNING", "é" * 20, 16))
    assert (line.attempt, line.time, line.level) == (1, WHEN, "WARNING")
    assert line.message == "é" * 6 + "…"
    assert len(line.message.encode()) <= 16


@pytest.mark.parametrize(
    ("message", "cap", "kept"),
    [("short", 10, "short"), ("abcdefghijk", 10, "abcdefg…"), ("ab", 2, "ab")],
)
def test_cut(message: str, cap: int, kept: str) -> None:
    assert cut(message, cap) == kept


@pytest.mark.parametrize(
    ("value", "fraction", "text"),
    [(0.375, 0.375, "38%"), (1, 1.0, "100%"), (7, None, "7"), (True, None, "true"),
     ({"of": 4}, None, '{"of":4}')],
)  # fmt: skip
def test_the_page_shows_a_bar_for_a_fraction_and_json_otherwise(
    value: object, fraction: float | None, text: str
) -> None:
    view = progress_view(Progress(value, None, 1, WHEN))
    assert view is not None
    assert (view.fraction, view.text, view.message) == (fraction, text, "")
