"""``arqd inspect --watch`` in a terminal: SIGTERM or Ctrl-C end it with the cursor shown
again and exit 0, as the end of the watch it is (the display hides the cursor meanwhile)."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import RedisServer

BIN = Path(sys.executable).parent
HIDE, SHOW = b"\x1b[?25l", b"\x1b[?25h"


def read_until(fd: int, process: subprocess.Popen[bytes], wanted: bytes, seen: bytearray) -> None:
    """Read the terminal into ``seen`` until ``wanted`` is in it (or the process has ended
    and nothing is left to read)."""
    deadline = time.monotonic() + 30
    while wanted not in seen:
        assert time.monotonic() < deadline, f"no {wanted!r} in {bytes(seen)!r}"
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the other side closed (Linux says EIO)
                chunk = b""
            if not chunk:
                return
            seen += chunk
        elif process.poll() is not None and not ready:
            return


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_the_watch_and_restores_the_cursor(
    redis_server: RedisServer, sig: signal.Signals
) -> None:
    primary, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARQD_")}
    env |= {"REDIS_URL": redis_server.url, "TERM": "xterm-256color", "COLUMNS": "120"}
    process = subprocess.Popen(
        [BIN / "arqd", "inspect", "--watch", "--interval", "0.2"],
        env=env,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
    )
    os.close(secondary)
    seen = bytearray()
    try:
        read_until(primary, process, b"Live workers", seen)
        assert HIDE in seen, bytes(seen)
        process.send_signal(sig)
        assert process.wait(20) == 0
        read_until(primary, process, SHOW, seen)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(primary)
    assert seen.rfind(SHOW) > seen.rfind(HIDE), bytes(seen[-200:])
    assert b"Traceback" not in seen
