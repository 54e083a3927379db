"""Task type names, queue names and caller-chosen task ids are checked against the whole
string: Python's ``re.match`` with ``$`` would let a trailing newline through, and the
task would wait in a queue (or for a handler) that nobody serves."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from arqd.core.errors import InvalidTask
from arqd.core.ids import new_task_id
from arqd.core.task import NewTask, check_name, check_queue, check_task_id
from arqd.store.codec import enqueue_args

CHECKS: list[tuple[Callable[[str], str], str]] = [
    (check_name, "echo"),
    (check_queue, "default"),
    (check_task_id, "order-7:retry.2"),
]


@pytest.mark.parametrize(("check", "good"), CHECKS)
def test_a_good_name_passes(check: Callable[[str], str], good: str) -> None:
    assert check(good) == good


@pytest.mark.parametrize(("check", "good"), CHECKS)
@pytest.mark.parametrize("suffix", ["\n", "\r\n", " ", "\x00"])
def test_a_trailing_newline_or_control_is_refused(
    check: Callable[[str], str], good: str, suffix: str
) -> None:
    with pytest.raises(InvalidTask):
        check(good + suffix)
    with pytest.raises(InvalidTask):
        check(suffix + good)


def test_generated_ids_pass_the_id_check() -> None:
    for _ in range(200):
        check_task_id(new_task_id())


@pytest.mark.parametrize(
    "task",
    [
        NewTask("echo\n"),
        NewTask("echo", id="abc\n"),
        NewTask("echo", id="a\x1fb"),
        NewTask("echo", id=""),
    ],
)
def test_enqueue_refuses_a_bad_type_or_caller_id(task: NewTask) -> None:
    with pytest.raises(InvalidTask):
        enqueue_args(task, 1000, 60_000)
