"""A Redis that cannot be reached: every ``arqd`` command says so in one line that names
the URL (password hidden) and the reason. One-shot commands exit 3; ``worker`` and
``serve`` wait for it and say so once. No traceback unless ARQD_LOG_LEVEL=debug."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from arqd import exits
from topologies import free_port

BIN = Path(sys.executable).parent
ONE_SHOT = {
    "enqueue": ["enqueue", "echo", "--payload", "1"],
    "enqueue --wait": ["enqueue", "echo", "--wait"],
    "inspect": ["inspect"],
    "inspect --watch": ["inspect", "--watch"],
    "bench": ["bench", "--tasks", "10", "--seconds", "1"],
    "workflow show": ["workflow", "show", "wf-1"],
    "workflow cancel": ["workflow", "cancel", "wf-1", "--queue", "flows"],
}


def environment(url: str, **env: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ARQD_")}
    return {**clean, "REDIS_URL": url, "METRICS_PORT": "0", **env}


def arqd(args: list[str], url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BIN / "arqd", *args],
        env=environment(url, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == exits.UNREACHABLE, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize("command", ONE_SHOT)
def test_a_closed_port(command: str) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    line = one_line(arqd(ONE_SHOT[command], url))
    assert line == f"error: cannot reach Redis at {url}: Connection refused"


@pytest.mark.parametrize("command", ["enqueue", "inspect"])
def test_a_host_that_does_not_exist(command: str) -> None:
    url = "redis://no-such-host.invalid:6379/0"
    line = one_line(arqd(ONE_SHOT[command], url))
    assert line.startswith(f"error: cannot reach Redis at {url}: "), line
    reason = line.removeprefix(f"error: cannot reach Redis at {url}: ")
    assert re.fullmatch(r"[A-Z][a-z ]+", reason), reason  # the resolver's words


@pytest.mark.parametrize("command", ["enqueue", "inspect"])
def test_a_cluster_none_of_whose_nodes_answers(command: str) -> None:
    url = f"redis+cluster://127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
    line = one_line(arqd(ONE_SHOT[command], url))
    assert line.startswith(f"error: cannot reach Redis at {url}: "), line
    assert "Connection refused" in line, line


def test_the_password_is_hidden() -> None:
    port = free_port()
    line = one_line(arqd(["inspect"], f"redis://:hunter2@127.0.0.1:{port}/0"))
    assert "hunter2" not in line
    assert f"redis://:***@127.0.0.1:{port}/0" in line


def test_debug_shows_the_traceback_first() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    done = arqd(ONE_SHOT["enqueue"], url, ARQD_LOG_LEVEL="debug")
    assert done.returncode == exits.UNREACHABLE
    assert "Traceback" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: cannot reach Redis at {url}")


class Service:
    """``arqd worker`` or ``arqd serve`` with its stderr in a file."""

    def __init__(self, args: list[str], url: str, log: Path) -> None:
        self.log = log
        with log.open("wb") as sink:
            self.process = subprocess.Popen(
                [BIN / "arqd", *args],
                env=environment(url, ARQD_LOG_LEVEL="info"),
                stdout=subprocess.DEVNULL,
                stderr=sink,
            )

    def said(self, text: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.log.read_text():
            assert self.process.poll() is None, f"it exited: {self.log.read_text()}"
            assert time.monotonic() < deadline, f"it never said {text!r}: {self.log.read_text()}"
            time.sleep(0.05)
        return self.log.read_text()


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        service.process.kill()
        service.process.wait()


@pytest.mark.parametrize("scheme", ["redis", "redis+cluster"])
def test_a_worker_waits_and_says_so_once_naming_the_url(
    services: list[Service], tmp_path: Path, scheme: str
) -> None:
    url = f"{scheme}://:hunter2@127.0.0.1:{free_port()}" + ("/0" if scheme == "redis" else "")
    worker = Service(["worker", "arqd.demo"], url, tmp_path / "worker.log")
    services.append(worker)
    shown = url.replace("hunter2", "***")
    worker.said(f"cannot reach Redis at {shown} (")
    time.sleep(3)  # several more tries, all quiet
    log = worker.said("the worker will start once it can")
    assert worker.process.poll() is None
    assert log.count("cannot reach Redis") == 1, log
    assert "hunter2" not in log
    assert "Traceback" not in log, log


def test_serve_answers_503_and_says_so_once_naming_the_url(
    services: list[Service], tmp_path: Path
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    port = free_port()
    served = Service(["serve", "--port", str(port)], url, tmp_path / "serve.log")
    services.append(served)
    served.said(f"cannot reach Redis at {url} (")
    deadline = time.monotonic() + 20
    while True:
        try:
            health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert health.json()["status"] == "degraded"
    time.sleep(2)
    log = served.log.read_text()
    assert served.process.poll() is None
    assert log.count("cannot reach Redis") == 1, log
    assert "Traceback" not in log, log
