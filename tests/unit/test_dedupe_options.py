"""Dedupe options are checked when made, and the enqueue's arguments carry them as one
pair: every error names what to change."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from arqd.core.dedupe import Dedupe, DedupeMode
from arqd.core.errors import InvalidTask
from arqd.core.task import NewTask
from arqd.store.codec import enqueue_args

KEEP_MS = 86_400_000


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("k", "sometimes"), "unknown dedupe mode 'sometimes': use one of until_started, "),
        (("k", None), "unknown dedupe mode None"),
        (("k", "throttle"), "dedupe mode throttle needs a window (seconds)"),
        (("k", "debounce"), "dedupe mode debounce needs a window"),
        (("k", "until_started", 5), "dedupe mode until_started takes no window"),
        (("k", "until_finished", 5), "takes no window (only throttle and debounce)"),
        (("k", "throttle", 0), "dedupe window must be 0.001 s to 366 days, got 0"),
        (("k", "throttle", -1), "dedupe window must be 0.001 s to 366 days"),
        (("k", "throttle", float("nan")), "dedupe window must be 0.001 s to 366 days"),
        (("k", "throttle", "5"), "dedupe window must be a number of seconds, got '5'"),
        (("k", "throttle", True), "dedupe window must be a number of seconds"),
        (("", "until_started"), "dedupe key must be a string of 1-256 characters"),
        (("k" * 257, "until_started"), "dedupe key must be a string of 1-256 characters"),
        ((7, "until_started"), "dedupe key must be a string"),
    ],
)
def test_an_invalid_dedupe_is_refused_with_a_clear_error(args: tuple[Any, ...], words: str) -> None:
    with pytest.raises(InvalidTask, match=re.escape(words)):
        Dedupe(*args)


def test_modes_are_given_as_names_or_members() -> None:
    assert Dedupe("k", "throttle", 1) == Dedupe("k", DedupeMode.THROTTLE, 1.0)
    assert Dedupe("k", "until_started").mode is DedupeMode.UNTIL_STARTED


def test_a_debounced_task_takes_no_delay_or_eta() -> None:
    debounce = Dedupe("k", "debounce", 1)
    for when in ({"delay": 5}, {"eta": datetime.now(UTC)}):
        with pytest.raises(InvalidTask, match="no delay or eta"):
            enqueue_args(NewTask("job", dedupe=debounce, **when), 1000, KEEP_MS)
    assert enqueue_args(NewTask("job", dedupe=debounce, delay=0, id="a"), 1000, KEEP_MS)


def test_dedupe_is_one_option_pair_and_none_without_it() -> None:
    plain = enqueue_args(NewTask("job", id="a"), 1000, KEEP_MS)
    assert plain == ["a", "job", b"null", 0]
    cases = {
        Dedupe("k:1", "until_started"): f"until_started:{KEEP_MS}:k:1",
        Dedupe("k", "until_finished"): f"until_finished:{KEEP_MS}:k",
        Dedupe("k", "throttle", 2.5): "throttle:2500:k",
        Dedupe("k", "debounce", 0.001): "debounce:1:k",
    }
    for dedupe, spec in cases.items():
        assert enqueue_args(NewTask("job", dedupe=dedupe, id="a"), 1000, KEEP_MS) == [
            "a", "job", b"null", 1, "dd", spec
        ]  # fmt: skip


def test_a_dedupe_that_is_not_a_dedupe_is_refused() -> None:
    task = NewTask("job", dedupe={"key": "k"})  # type: ignore[arg-type]
    with pytest.raises(InvalidTask, match=r"dedupe must be an arqd\.core\.dedupe\.Dedupe"):
        enqueue_args(task, 1000, KEEP_MS)
