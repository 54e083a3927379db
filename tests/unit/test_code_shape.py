"""The code stays readable in pieces: no module in src/ over 400 lines and no function over
40, unless a comment on the function's first lines says why it must be longer
(``# long: ...``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "arqd"
MODULE_LINES = 400
FUNCTION_LINES = 40
FILES = sorted(SRC.rglob("*.py"))


def long_functions(source: str, limit: int = FUNCTION_LINES) -> list[str]:
    """The functions of ``source`` over ``limit`` lines that do not say why."""
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            length = node.end_lineno - node.lineno + 1
            head = "\n".join(lines[node.lineno - 1 : node.lineno + 3])
            if length > limit and "# long:" not in head:
                found.append(f"{node.name} (line {node.lineno}): {length} lines")
    return found


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(SRC)) for p in FILES])
def test_modules_and_functions_are_short(path: Path) -> None:
    source = path.read_text()
    assert len(source.splitlines()) <= MODULE_LINES
    assert long_functions(source) == []


def test_a_long_function_is_caught_unless_it_says_why() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(45))
    assert long_functions(f"def f() -> None:\n{body}\n") == ["f (line 1): 46 lines"]
    assert long_functions(f"def f() -> None:  # long: a table\n{body}\n") == []
