"""docs/architecture.md stays true: every module, class and function it names exists, and
every script and test file it names is there."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "architecture.md").read_text()
NAMES = sorted(set(re.findall(r"`(arqd(?:\.\w+)+)`", DOC)))
SCRIPTS = sorted(set(re.findall(r"`(\w+\.lua)`", DOC)))
FILES = sorted(set(re.findall(r"`((?:tests|src|docs)/[\w/]+\.\w+)`", DOC)))


def resolve(dotted: str) -> object:
    """The object ``dotted`` names: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:end]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[end:]:
            found = getattr(found, attribute)
        return found
    raise ModuleNotFoundError(dotted)


def test_the_page_names_code() -> None:
    assert len(NAMES) > 40
    assert "enqueue.lua" in SCRIPTS


@pytest.mark.parametrize("dotted", NAMES)
def test_every_name_exists(dotted: str) -> None:
    resolve(dotted)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_exists(script: str) -> None:
    assert (REPO / "src" / "arqd" / "store" / "lua" / script).is_file()


@pytest.mark.parametrize("path", FILES)
def test_every_file_exists(path: str) -> None:
    assert (REPO / path).is_file()


def test_every_script_is_described() -> None:
    scripts = {p.name for p in (REPO / "src" / "arqd" / "store" / "lua").glob("*.lua")}
    assert scripts - {"common.lua"} <= set(SCRIPTS)


def test_a_missing_name_fails() -> None:
    with pytest.raises(AttributeError):
        resolve("arqd.store.tasks.Tasks.no_such_method")
    with pytest.raises(AttributeError):
        resolve("arqd.no_such_module")
