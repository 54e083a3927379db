"""``arqd --help`` and every command's: flags show no value, options that take one show
its type, and the exit codes listed are the README's and the code's."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from arqd import exits
from arqd.cli import app

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


# typer ships a click of its own (typer._click): its objects are looked at, not imported.
Command = Any


def commands() -> list[tuple[list[str], Command]]:
    """Every command and group, as the words that name it."""
    found: list[tuple[list[str], Command]] = []

    def walk(path: list[str], command: Command) -> None:
        found.append((path, command))
        if is_group(command):
            for name, sub in command.commands.items():
                walk([*path, name], sub)

    walk([], typer.main.get_command(app))
    return found


def is_group(command: Command) -> bool:
    return isinstance(getattr(command, "commands", None), dict)


NAMES = [" ".join(path) or "arqd" for path, _ in commands()]


def help_of(path: list[str]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(("path", "command"), commands(), ids=NAMES)
def test_flags_are_shown_without_a_value(path: list[str], command: Command) -> None:
    text = help_of(path)
    options = [p for p in command.params if p.param_type_name == "option" and not p.hidden]
    for option in options:
        name = max(option.opts, key=len)
        shown = re.search(rf"^\s+(?:-\w, )?{re.escape(name)}( <[^>]+>)?\s", text, re.M)
        assert shown, f"{name} is missing from `arqd {' '.join(path)} --help`:\n{text}"
        if option.is_flag:
            assert shown.group(1) is None, f"the flag {name} is shown with a value:\n{text}"
        else:
            assert shown.group(1), f"{name} takes a value but shows none:\n{text}"


def test_enqueue_shows_its_flag_and_options_as_readme_names_them() -> None:
    text = help_of(["enqueue"])
    assert re.search(r"^\s+--wait\s{2,}Wait", text, re.M)
    assert re.search(r"^\s+--wait-timeout <float", text, re.M)
    assert re.search(r"^\s+--task-timeout <float", text, re.M)
    assert not re.search(r"^\s+--timeout\b", text, re.M), "the old name stays out of --help"


@pytest.mark.parametrize(("path", "command"), commands(), ids=NAMES)
def test_every_command_lists_the_exit_codes(path: list[str], command: Command) -> None:
    if is_group(command) and path:
        return  # `arqd embedded` only lists its commands
    text = help_of(path)
    for code, meaning in exits.MEANINGS.items():
        assert f"{code}  {meaning}" in text


def test_the_readme_lists_the_same_exit_codes() -> None:
    section = README[README.index("## Command line") : README.index("## Configuration")]
    rows = dict(re.findall(r"^\| `(\d+)` \| (.+) \|$", section, re.M))
    assert sorted(int(code) for code in rows) == sorted(exits.MEANINGS)
    for code, meaning in exits.MEANINGS.items():
        words = set(re.findall(r"[a-z]+", rows[str(code)].lower()))
        assert set(re.findall(r"[a-z]+", meaning.lower())) <= words, (code, rows[str(code)])
