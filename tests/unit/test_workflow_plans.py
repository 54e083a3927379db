"""Workflows as described (arqd.core.workflows, no Redis): chains flatten, groups need
their failure policy, members are checked, steps come out in order."""

from __future__ import annotations

import pytest

from arqd.core.errors import InvalidTask
from arqd.core.task import NewTask
from arqd.core.workflows import Chain, Group, chain, group, started, steps


def test_chains_flatten_and_groups_with_a_callback_are_chains() -> None:
    a, b, c, d = (NewTask(name) for name in "abcd")
    made = chain(a, group([b, c], on_failure="continue", callback=d), on_error=a)
    assert isinstance(made, Chain)
    assert made.steps == (a, Group((b, c), "continue"), d)
    assert made.on_error is a
    planned = steps(made)
    assert [(len(s.members), s.is_group, s.policy) for s in planned] == [
        (1, False, "fail"),
        (2, True, "continue"),
        (1, False, "fail"),
    ]
    state = started("w1", "default", planned)
    assert [m.id for m in state.steps[1].members] == ["w1.1.0", "w1.1.1"]
    assert [m.status for s in state.steps for m in s.members] == [
        "queued",
        "pending",
        "pending",
        "pending",
    ]


def test_a_plain_group_is_one_step() -> None:
    made = group([NewTask("a")], on_failure="ignore")
    assert isinstance(made, Group)
    assert steps(made)[0].is_group


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: group([], on_failure="fail"), "at least one member"),
        (lambda: group([NewTask("a")], on_failure="later"), "on_failure"),  # type: ignore[arg-type]
        (lambda: chain(), "at least one step"),
        (lambda: steps(chain(NewTask("a", queue="no space"))), "invalid queue name"),
        (lambda: steps(chain(NewTask("a", delay=1))), "delay"),
        (lambda: steps(chain(NewTask("a", idempotency_key="k"))), "idempotency_key"),
    ],
)
def test_what_a_workflow_cannot_be_is_refused(make: object, message: str) -> None:
    with pytest.raises(InvalidTask, match=message):
        make()  # type: ignore[operator]
