"""``arqd serve`` as a process: ``--app`` runs your task types, ``--no-worker`` runs none."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from conftest import RedisServer
from e2e.live import API_KEY, AUTH
from topologies import free_port

BIN = Path(sys.executable).parent
TASKS = """
from arqd.worker import Registry

registry = Registry()


@registry.task()
async def double(payload: int) -> int:
    return payload * 2
"""


class Served:
    """An ``arqd serve`` process and the URL it answers on."""

    def __init__(self, args: list[str], cwd: Path, redis_url: str) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARQD_")}
        env |= {
            "REDIS_URL": redis_url,
            "API_KEYS": API_KEY,
            "ARQD_KEY_PREFIX": f"t{uuid.uuid4().hex[:10]}",
            "ARQD_LEASE_TIMEOUT": "1500",
        }
        command = [str(BIN / "arqd"), "serve", "--port", str(self.port), *args]
        self.process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.stderr: str | None = None

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("arqd serve exited: " + self.stop())
            try:
                if httpx.get(f"{self.url}/health").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("arqd serve did not come up: " + self.stop())

    def stop(self) -> str:
        """Stop it (SIGTERM) if it runs; its stderr."""
        if self.stderr is None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
            _, err = self.process.communicate(timeout=30)
            self.stderr = err.decode()
        return self.stderr


@pytest.fixture
def serve(redis_server: RedisServer, tmp_path: Path) -> Iterator[list[Served]]:
    started: list[Served] = []
    (tmp_path / "tasks.py").write_text(TASKS)
    yield started
    for served in started:
        served.stop()


def start(started: list[Served], args: list[str], cwd: Path, redis_url: str) -> Served:
    served = Served(args, cwd, redis_url)
    started.append(served)
    served.wait_until_up()
    return served


def test_app_runs_your_task_types(
    serve: list[Served], redis_server: RedisServer, tmp_path: Path
) -> None:
    served = start(serve, ["--app", "tasks"], tmp_path, redis_server.url)
    with httpx.Client(base_url=served.url, headers=AUTH, timeout=30) as http:
        task = http.post("/tasks", json={"type": "double", "payload": 21}).json()
        done = http.get(f"/tasks/{task['id']}", params={"wait": 20}).json()
    assert (done["status"], done["result"]) == ("succeeded", 42)


def test_no_worker_serves_the_api_and_runs_nothing(
    serve: list[Served], redis_server: RedisServer, tmp_path: Path
) -> None:
    served = start(serve, ["--no-worker"], tmp_path, redis_server.url)
    with httpx.Client(base_url=served.url, headers=AUTH, timeout=30) as http:
        task = http.post("/tasks", json={"type": "echo", "payload": 1}).json()
        still = http.get(f"/tasks/{task['id']}", params={"wait": 1}).json()
        workers = http.get("/workers").json()["workers"]
    assert still["status"] == "queued"
    assert workers == []
    err = served.stop()
    assert "API only" in err


def test_the_start_up_line_hides_the_redis_password(
    serve: list[Served], redis_server: RedisServer, tmp_path: Path
) -> None:
    admin = redis.Redis(port=redis_server.port)
    admin.acl_setuser(
        "tester", enabled=True, passwords=["+s3cret-pw"], keys="*", channels="*", commands=["+@all"]
    )
    url = f"redis://tester:s3cret-pw@127.0.0.1:{redis_server.port}/0"
    served = start(serve, ["--no-worker"], tmp_path, url)
    err = served.stop()
    assert "serving on" in err
    assert "s3cret-pw" not in err
    admin.acl_deluser("tester")
    admin.close()
