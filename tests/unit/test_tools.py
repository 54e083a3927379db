"""The helper for programs no Python package provides: skip when missing, fail under CI."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tools import CHROMIUM, Tool, redis_server_binary, require

MISSING = Tool("arqd-no-such-program", "arqd-no-such-package")


def test_a_missing_tool_skips_naming_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        require(MISSING)
    assert str(skipped.value) == (
        "needs arqd-no-such-program on the PATH: apt-get install arqd-no-such-package"
    )


@pytest.mark.parametrize("ci", ["true", "TRUE"])
def test_a_missing_tool_fails_under_ci(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception) as failed:
        require(MISSING)
    assert "apt-get install arqd-no-such-package" in str(failed.value)
    assert "CI=true" in str(failed.value)


def test_a_missing_fixed_path_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CI", raising=False)
    absent = Tool(CHROMIUM.name, CHROMIUM.package, path=str(tmp_path / "chromium"))
    with pytest.raises(pytest.skip.Exception, match=r"chromium: apt-get install chromium"):
        require(absent)


@pytest.mark.parametrize("ci", ["true", ""])
def test_a_present_tool_is_found(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    python = Path(sys.executable)
    monkeypatch.setenv("PATH", str(python.parent))
    assert require(Tool(python.name, "python3")) == str(python)
    assert require(Tool("python", "python3", path=str(python))) == str(python)


def test_without_redis_server_the_wheels_valkey_serves(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    binary = Path(redis_server_binary())
    assert binary.name == "valkey-server"
    assert binary.is_file()
