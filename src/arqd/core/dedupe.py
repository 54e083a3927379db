"""Deduplication: a key that makes later enqueues return the task it kept, by mode.

The enqueue script decides atomically (``store/lua/enqueue.lua``); ``blocks`` is that
decision in Python, the reference ``tests/integration/test_dedupe_model.py`` checks the modes
against. Windows are in seconds, as every duration a producer gives.

    mode             a later enqueue with the same key returns the kept task while it is
    until_started    queued, held or scheduled, and has never started
    until_finished   not finished (queued, held, scheduled, active or backing off)
    throttle         within ``window`` of the enqueue that made it, whatever its status
    debounce         scheduled and never started: the kept task takes the later payload
                     and is due ``window`` after the latest enqueue
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from arqd.core.errors import InvalidTask

MAX_KEY = 256  # characters, as an idempotency key


class DedupeMode(StrEnum):
    """How long a dedupe key keeps its task (see the module's docstring)."""

    UNTIL_STARTED = "until_started"
    UNTIL_FINISHED = "until_finished"
    THROTTLE = "throttle"
    DEBOUNCE = "debounce"

    @property
    def windowed(self) -> bool:
        """A mode that needs a window (and takes no other bound)."""
        return self in (DedupeMode.THROTTLE, DedupeMode.DEBOUNCE)


MODES = tuple(mode.value for mode in DedupeMode)


@dataclass(frozen=True, slots=True, init=False)
class Dedupe:
    """An enqueue's deduplication: ``Dedupe("user-7", "throttle", window=5.0)``.
    Checked when made; every error names what to change."""

    key: str
    mode: DedupeMode
    window: float | None  # seconds: throttle and debounce only

    def __init__(self, key: str, mode: DedupeMode | str, window: float | None = None) -> None:
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY:
            raise InvalidTask(f"dedupe key must be a string of 1-{MAX_KEY} characters")
        checked = mode_of(mode)
        check_window(checked, window)
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "mode", checked)
        object.__setattr__(self, "window", window)

    @property
    def window_ms(self) -> int:
        """The window in ms (0 for the modes without one)."""
        return round(self.window * 1000) if self.window is not None else 0


def mode_of(mode: object) -> DedupeMode:
    """``mode`` as a ``DedupeMode``, or an error listing the modes."""
    if isinstance(mode, str) and mode in MODES:
        return DedupeMode(mode)
    raise InvalidTask(f"unknown dedupe mode {mode!r}: use one of {', '.join(MODES)}")


def check_window(mode: DedupeMode, window: float | None) -> None:
    """A window is required by throttle and debounce, and refused by the until_* modes
    (they last as long as their task waits or runs: a window would be a second bound)."""
    if not mode.windowed:
        if window is not None:
            raise InvalidTask(f"dedupe mode {mode} takes no window (only throttle and debounce)")
        return
    if window is None:
        raise InvalidTask(f"dedupe mode {mode} needs a window (seconds)")
    if isinstance(window, bool) or not isinstance(window, int | float):
        raise InvalidTask(f"dedupe window must be a number of seconds, got {window!r}")
    if not 0.001 <= window <= 366 * 86_400:
        raise InvalidTask(f"dedupe window must be 0.001 s to 366 days, got {window}")


def blocks(mode: DedupeMode, status: str | None, started: bool, within_window: bool) -> bool:
    """Whether the kept task (``status`` a ``TaskStatus`` value, None once its hash is
    gone; ``started``: it ever started) makes a new enqueue return it. ``within_window``:
    the key has not lapsed (it lapses a window after it was set, for throttle; after the
    latest enqueue, for debounce; the until_* modes hold no window)."""
    if status is None or not within_window:
        return False
    if mode is DedupeMode.UNTIL_STARTED:
        return status in ("queued", "scheduled") and not started
    if mode is DedupeMode.UNTIL_FINISHED:
        return status in ("queued", "scheduled", "active")
    if mode is DedupeMode.THROTTLE:
        return True
    return status == "scheduled" and not started
