"""The HTTP API quickstart runs as written: serve, watch events, enqueue with curl, read back.

Each block runs in its own process, as in the three terminals the text describes. The only
change made to them is the port: the test serves on a free one (via ARQD_PORT) instead of
3000, which another program on the machine may hold.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from topologies import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "README.md"  # where the quickstart blocks live
BIN = Path(sys.executable).parent
JSON_OBJECT = re.compile(r"\{.*\}")


def block(marker: str) -> str:
    match = re.search(rf"<!-- {marker}:[^>]*-->\s*```sh\n(.*?)```", DOCUMENT.read_text(), re.S)
    assert match, f"{DOCUMENT.name} has no block marked {marker}"
    return match.group(1)


def on_port(commands: str, port: int) -> str:
    return commands.replace(":3000", f":{port}")


def environment(port: int) -> dict[str, str]:
    """No Redis and no keys configured: what a new user has."""
    unset = {"REDIS_URL", "API_KEYS"}
    clean = {k: v for k, v in os.environ.items() if k not in unset and not k.startswith("ARQD_")}
    return {**clean, "PATH": f"{BIN}:{clean['PATH']}", "ARQD_PORT": str(port)}


class Output:
    """Collects a process's output in a thread, so a test can wait for a line."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                self.lines.append(line)

    def close(self) -> None:
        self._thread.join(10)

    def wait_for(self, pattern: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if re.search(pattern, line):
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no line matched {pattern!r} in:\n{''.join(self.lines)}")


def start(commands: str, cwd: Path, port: int) -> tuple[subprocess.Popen[str], Output]:
    process = subprocess.Popen(
        ["bash", "-c", commands],
        cwd=cwd,
        env=environment(port),
        stdin=subprocess.PIPE,  # kept open, like a terminal
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    return process, Output(process.stdout)


def stop(process: subprocess.Popen[str], output: Output) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # its own session: bash and what it started
        process.wait(30)
    output.close()
    assert process.stdin is not None
    process.stdin.close()


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """A fresh folder; its embedded server is stopped afterwards."""
    yield tmp_path
    env = environment(0)
    subprocess.run([BIN / "arqd", "embedded", "stop"], cwd=tmp_path, env=env, check=False)


def wait_until_serving(port: int, server: Output) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("arqd serve did not come up:\n" + "".join(server.lines))


def events_in(lines: list[str]) -> list[dict[str, Any]]:
    found = []
    for line in lines:
        match = JSON_OBJECT.search(line)
        if match:
            found.append(json.loads(match.group()))
    return found


def test_the_api_quickstart_runs_as_written(workdir: Path) -> None:
    port = free_port()
    server, server_output = start(block("quickstart-api-serve"), workdir, port)
    watcher: tuple[subprocess.Popen[str], Output] | None = None
    try:
        wait_until_serving(port, server_output)
        server_output.wait_for("API_KEYS is not set")
        watcher = start(on_port(block("quickstart-api-watch"), port), workdir, port)
        watched = watcher[1]
        watched.wait_for("Connected to")

        enqueue = on_port(block("quickstart-api-enqueue"), port)
        done = subprocess.run(
            ["bash", "-c", f"set -e\n{enqueue}"],
            cwd=workdir,
            env=environment(port),
            capture_output=True,
            text=True,
            timeout=60,
        )
        log = "".join(server_output.lines)
        assert done.returncode == 0, f"{done.stderr}\n{log}"
        task = json.loads(done.stdout)
        assert (task["type"], task["status"]) == ("echo", "succeeded"), f"{task}\n{log}"
        assert task["result"] == {"hello": "world"}

        watched.wait_for(rf'"task_id":"{re.escape(task["id"])}".*"event":"succeeded"')
        seen = [e["event"] for e in events_in(watched.lines) if e["task_id"] == task["id"]]
        assert seen == ["queued", "active", "succeeded"]
    finally:
        if watcher is not None:
            stop(*watcher)
        stop(server, server_output)
    # uvicorn shuts down gracefully on SIGTERM, then exits by the same signal.
    assert server.returncode in (0, -signal.SIGTERM), "".join(server_output.lines)
    assert "Application shutdown complete" in "".join(server_output.lines)
    assert (workdir / ".arqd" / "server.json").exists()
