"""How an idle worker splits its free slots between its queues' dequeue calls."""

from __future__ import annotations

import pytest

from arqd.worker.fetching import shares


@pytest.mark.parametrize(
    ("total", "parts", "expected"),
    [(64, 1, [64]), (7, 2, [4, 3]), (2, 3, [1, 1, 0]), (9, 3, [3, 3, 3])],
)
def test_the_shares_add_up_and_differ_by_one_at_most(
    total: int, parts: int, expected: list[int]
) -> None:
    assert shares(total, parts) == expected
