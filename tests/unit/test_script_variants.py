"""Scripts made twice from one file, with and without a helper (scripts.VARIANTS)."""

from __future__ import annotations

from importlib.resources import files

import pytest

from arqd.store import codec, scripts


@pytest.mark.parametrize("name", sorted(scripts.VARIANTS))
def test_only_the_variant_carries_its_helper(name: str) -> None:
    file, helper = scripts.VARIANTS[name]
    with_helper, without = scripts.source(name), scripts.source(file)
    assert f"local function {helper}(" in with_helper
    assert f"local function {helper}(" not in without
    assert f"\nlocal {helper} = false\n" in without
    body = (files("arqd.store") / "lua" / f"{file}.lua").read_text()
    assert with_helper.endswith(body)
    assert without.endswith(body)
    assert len(without) < 0.9 * len(with_helper)
    assert scripts.sha(name) != scripts.sha(file)


def test_an_enqueue_with_a_dedupe_pair_runs_the_dedupe_variant() -> None:
    plain: codec.ArgList = ["1", "t", b"{}", 0, "2", "t", b"{}", 1, "prio", 5]
    assert codec.enqueue_script(plain) == "enqueue"
    assert codec.enqueue_script([*plain, "3", "t", b"{}", 1, "dd", "until_started:5:k"]) == (
        "enqueue_dedupe"
    )
