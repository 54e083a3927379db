"""Bad input to ``arqd`` gets one line that says what to do, and the README's exit code,
before any Redis is asked (these need none)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from arqd import exits
from arqd.cli import app

MALFORMED = {
    "localhost:6379": "a Redis URL starts with redis://",
    "redis://localhost:port/0": "Port could not be cast",
    "http://localhost:6379": "a Redis URL starts with redis://",
    "redis://localhost:6379/0?socket_timeout=soon": "Invalid value for 'socket_timeout'",
    "redis+sentinel://s1:26379,s2:26379": "ends with /service or /service/db",
    "redis+sentinel://s1:26379/mymaster/zero": "is a number, not 'zero'",
    "redis+sentinel://s1:port/mymaster": "'s1:port' is not host:port",
    "redis+sentinel:///mymaster": "names at least one sentinel host:port",
    "redis+sentinel://s1/mymaster?sentinel_pass=x": "unknown Sentinel URL option(s): sentinel_pass",
}
COMMANDS = {
    "enqueue": ["enqueue", "echo"],
    "inspect": ["inspect"],
    "bench": ["bench", "--tasks", "1"],
    "worker": ["worker", "arqd.demo"],
    "serve": ["serve", "--port", "0"],
}


def run(args: list[str], **env: str) -> Result:
    """``arqd ARGS`` with no arqd setting but ``env`` (REDIS_URL unset unless given)."""
    clean = {k: None for k in os.environ if k.startswith("ARQD_") or k == "REDIS_URL"}
    return CliRunner().invoke(app, args, env={**clean, **env})


def one_line_error(result: Result, code: int) -> str:
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    line = result.stderr.strip()
    assert line.startswith("error: "), result.stderr
    assert "\n" not in line, result.stderr
    return line


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("url", "reason"), MALFORMED.items())
def test_a_malformed_redis_url_is_a_configuration_error(
    command: str, url: str, reason: str
) -> None:
    line = one_line_error(run(COMMANDS[command], REDIS_URL=url), exits.USAGE)
    assert f"REDIS_URL={url!r} is not a Redis URL" in line
    assert reason in line
    assert "redis://" in line  # the form to use


def test_a_malformed_url_never_shows_its_password() -> None:
    line = one_line_error(run(["inspect"], REDIS_URL="default:hunter2@cache:6379"), exits.USAGE)
    assert "hunter2" not in line
    assert "'default:***@cache:6379'" in line


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unknown_setting_is_a_configuration_error(command: str) -> None:
    line = one_line_error(run(COMMANDS[command], ARQD_CONCURENCY="5"), exits.USAGE)
    assert "unknown setting(s): ARQD_CONCURENCY" in line


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["worker", "arqd.demo", "--concurrency", "0"], "--concurrency"),
        (["inspect", "--interval", "0"], "--interval"),
        (["enqueue", "echo", "--max-retries", "-1"], "--max-retries"),
        (["enqueue", "echo", "--delay", "-1"], "--delay"),
        (["enqueue", "echo", "--task-timeout", "0"], "--task-timeout"),
        (["enqueue", "echo", "--wait-timeout", "-1"], "--wait-timeout"),
        (["bench", "--tasks", "0"], "--tasks"),
        (["bench", "--concurrency", "0"], "--concurrency"),
    ],
)
def test_an_option_out_of_range_names_the_option(args: list[str], option: str) -> None:
    result = run(args, REDIS_URL="redis://127.0.0.1:1/0")
    assert result.exit_code == exits.USAGE, result.output
    assert f"Invalid value for '{option}'" in result.output


def test_a_payload_that_is_not_json_is_refused() -> None:
    line = one_line_error(run(["enqueue", "echo", "--payload", "{a: 1}"]), exits.USAGE)
    assert "--payload is not valid JSON" in line


@pytest.mark.parametrize("command", ["worker", "serve"])
def test_a_module_that_cannot_be_imported_is_named(command: str) -> None:
    args = (
        ["worker", "no_such_tasks"] if command == "worker" else ["serve", "--app", "no_such_tasks"]
    )
    line = one_line_error(run(args, REDIS_URL="redis://127.0.0.1:1/0"), exits.USAGE)
    assert "cannot import 'no_such_tasks'" in line


@pytest.mark.parametrize("command", ["enqueue", "inspect", "bench", "worker", "serve"])
def test_a_data_folder_arqd_cannot_use_stops_the_command(command: str, tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    line = one_line_error(
        run(COMMANDS[command], ARQD_DATA_DIR=str(not_a_folder)), exits.UNREACHABLE
    )
    assert f"cannot use {not_a_folder} as the embedded server's data folder" in line
    assert "ARQD_DATA_DIR" in line


def test_embedded_stop_says_not_running_when_nothing_ran(tmp_path: Path) -> None:
    result = run(["embedded", "stop"], ARQD_DATA_DIR=str(tmp_path / "data"))
    assert result.exit_code == exits.OK, result.output
    assert result.stdout.strip() == "not running"
    assert not (tmp_path / "data").exists()


def test_embedded_status_says_not_running_with_its_exit_code(tmp_path: Path) -> None:
    result = run(["embedded", "status"], ARQD_DATA_DIR=str(tmp_path / "data"))
    assert result.exit_code == exits.NO
    assert result.stdout.strip() == "not running"
