"""``arqd pause`` / ``arqd resume`` print what of the queue is paused; ``arqd inspect``
shows it with its reason; ``arqd enqueue --expires-in`` gives the task a deadline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from arqd import exits
from conftest import RedisServer

BIN = Path(sys.executable).parent


def arqd(redis_server: RedisServer, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARQD_")}
    env |= {"REDIS_URL": redis_server.url, "ARQD_KEY_PREFIX": prefix, "COLUMNS": "250"}
    return subprocess.run(
        [BIN / "arqd", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_pause_inspect_resume(redis_server: RedisServer) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    made = arqd(redis_server, prefix, "enqueue", "echo", "--queue", "mail", "--expires-in", "60")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["expires_at"].endswith("Z")

    paused = arqd(redis_server, prefix, "pause", "mail", "--reason", "smtp down")
    assert paused.returncode == 0, paused.stderr
    state = json.loads(paused.stdout)
    assert (state["paused"], state["reason"]) == (True, "smtp down")
    typed = arqd(redis_server, prefix, "pause", "mail", "--type", "echo", "--reason", "bounce")
    assert json.loads(typed.stdout)["paused_types"][0]["type"] == "echo"
    shown = arqd(redis_server, prefix, "inspect")
    assert shown.returncode == 0, shown.stderr
    assert "yes (smtp down), echo (bounce)" in shown.stdout

    resumed = arqd(redis_server, prefix, "resume", "mail")
    assert json.loads(resumed.stdout)["paused"] is False


def test_a_bad_type_name_is_a_usage_error(redis_server: RedisServer) -> None:
    done = arqd(redis_server, "tbad", "pause", "mail", "--type", "9lives")
    assert done.returncode == exits.USAGE
    assert "invalid task type '9lives'" in done.stderr
