"""The parts of a task's JSON with models of their own: its dedupe key (in), and its
progress and log lines (out)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from arqd.core.dedupe import MAX_KEY, Dedupe, check_window, mode_of
from arqd.core.errors import InvalidTask

MAX_SECONDS = 366 * 86_400.0  # delays and timeouts beyond a year are mistakes, not plans


class DedupeIn(BaseModel):
    """A dedupe key: while it blocks, an enqueue with it returns the task it kept (200).
    ``until_started``: while that task waits and has never started; ``until_finished``:
    until it has finished; ``throttle``: for ``window`` seconds after it was enqueued;
    ``debounce``: it is due ``window`` seconds after the latest enqueue, with that one's
    payload. ``window`` is required by throttle and debounce, refused by the others."""

    model_config = ConfigDict(extra="forbid", strict=True)

    key: str = Field(min_length=1, max_length=MAX_KEY)
    mode: Literal["until_started", "until_finished", "throttle", "debounce"]  # strict: no enum
    window: float | None = Field(
        default=None, ge=0.001, le=MAX_SECONDS, allow_inf_nan=False, validate_default=True
    )

    @field_validator("window")
    @classmethod
    def _fits_mode(cls, window: float | None, info: ValidationInfo) -> float | None:
        if "mode" in info.data:  # else the mode's own error says what is wrong
            try:
                check_window(mode_of(info.data["mode"]), window)
            except InvalidTask as exc:
                raise ValueError(str(exc)) from None
        return window

    def to_dedupe(self) -> Dedupe:
        return Dedupe(self.key, self.mode, self.window)


class ProgressOut(BaseModel):
    """What the task's last attempt said of its progress (``ctx.progress``)."""

    value: Any = Field(description="A fraction (0.42) or any JSON the handler gave")
    message: str | None
    attempt: int
    updated_at: datetime


class LogLineOut(BaseModel):
    """One line an attempt logged (``ctx.log``, or ``logging`` inside the handler)."""

    attempt: int
    time: datetime
    level: str
    message: str


class TaskLogsOut(BaseModel):
    """The log lines kept of each attempt, oldest first (``ARQD_TASK_LOG_LINES`` each)."""

    task_id: str
    lines: list[LogLineOut]


__all__ = ["MAX_SECONDS", "DedupeIn", "LogLineOut", "ProgressOut", "TaskLogsOut"]
