"""With no REDIS_URL, the README's commands work and queued tasks survive kill -9."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent


def readme_block(marker: str) -> str:
    match = re.search(rf"<!-- {marker}:[^>]*-->\s*```sh\n(.*?)```", README.read_text(), re.S)
    assert match, f"README has no block marked {marker}"
    return match.group(1)


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """A folder with no Redis configured; its embedded server is stopped afterwards."""
    yield tmp_path
    subprocess.run([BIN / "arqd", "embedded", "stop"], cwd=tmp_path, env=env(), check=False)


def env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    return {**clean, "PATH": f"{BIN}:{clean['PATH']}", "ARQD_LEASE_TIMEOUT": "1000"}


def run(script: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", script],
        cwd=cwd,
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def first_json(output: str) -> dict[str, object]:
    """The first JSON object printed (arqd enqueue prints one, indented)."""
    start = output.index("{")
    value, _ = json.JSONDecoder().raw_decode(output[start:])
    assert isinstance(value, dict)
    return value


def test_the_readme_quickstart_runs_with_no_redis_configured(workdir: Path) -> None:
    block = readme_block("quickstart-core")
    result = run(f"set -e\n{block}\nkill -TERM %1\nwait %1", workdir)
    assert result.returncode == 0, result.stderr
    task = first_json(result.stdout)
    assert (task["status"], task["result"]) == ("succeeded", 3)
    assert "Queues" in result.stdout
    assert (workdir / ".arqd" / "server.json").exists()


WAIT_FOR = """
import asyncio, sys
from arqd.client import Client

async def main() -> None:
    async with Client.from_settings() as client:
        for task_id in sys.argv[1:]:
            task = await client.wait(task_id, timeout=30)
            print(task.status, task.result)

asyncio.run(main())
"""


def test_queued_tasks_survive_kill_9_of_arqd_and_its_embedded_server(workdir: Path) -> None:
    (workdir / "tasks.py").write_text(
        "from arqd.worker import Registry\nregistry = Registry()\n\n"
        "@registry.task()\nasync def echo(payload: object) -> object:\n    return payload\n"
    )
    ids = []
    for n in range(3):
        out = run(f"arqd enqueue echo --payload '{n}'", workdir)
        assert out.returncode == 0, out.stderr
        ids.append(str(first_json(out.stdout)["id"]))

    # arqd running (a worker on another queue) and its server: both killed without warning.
    worker = subprocess.Popen(
        [BIN / "arqd", "worker", "tasks", "-q", "other"],
        cwd=workdir,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = json.loads((workdir / ".arqd" / "server.json").read_text())
    os.kill(server["pid"], signal.SIGKILL)
    worker.kill()
    worker.wait()

    (workdir / "wait_for.py").write_text(WAIT_FOR)
    check = run(
        f"arqd worker tasks &\npython wait_for.py {' '.join(ids)}\nkill -TERM %1\nwait %1", workdir
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.splitlines()[:3] == ["succeeded 0", "succeeded 1", "succeeded 2"]


def test_workers_carry_on_through_embedded_stop_and_the_next_start(workdir: Path) -> None:
    (workdir / "tasks.py").write_text(
        "from arqd.worker import Registry\nregistry = Registry()\n\n"
        "@registry.task()\nasync def echo(payload: object) -> object:\n    return payload\n"
    )
    log = workdir / "worker.log"
    with log.open("wb") as sink:
        worker = subprocess.Popen(
            [BIN / "arqd", "worker", "tasks"], cwd=workdir, env=env(), stderr=sink
        )
    try:
        said(log, "started: queues=", worker)  # started, on the embedded server it started
        port = json.loads((workdir / ".arqd" / "server.json").read_text())["port"]

        stop = run("arqd embedded stop", workdir)
        assert (stop.returncode, stop.stdout.split(" ")[0]) == (0, "stopped"), stop.stderr
        said(log, "was stopped (arqd embedded stop)", worker)

        done = run("arqd enqueue echo --payload 7 --wait-timeout 30", workdir)  # starts it
        assert done.returncode == 0, done.stderr
        assert first_json(done.stdout)["result"] == 7
        assert json.loads((workdir / ".arqd" / "server.json").read_text())["port"] == port
        said(log, "is back at", worker)
    finally:
        worker.terminate()
        worker.wait(30)

    assert run("arqd embedded stop", workdir).stdout.startswith("stopped")
    again = run("arqd embedded stop", workdir)
    assert (again.returncode, again.stdout.strip()) == (0, "not running")


def said(log: Path, text: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"never said {text!r}: {log.read_text()}"
        time.sleep(0.05)
