"""The README's Python example, pasted into a file as written, runs against a Redis
(REDIS_URL) with the quickstart's worker, and prints the result."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import RedisServer

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
BIN = Path(sys.executable).parent


def python_block(marker: str) -> str:
    match = re.search(rf"<!-- {marker}:[^>]*-->\s*```python\n(.*?)```", README, re.S)
    assert match, f"README has no python block marked {marker}"
    return match.group(1)


def quickstart_tasks() -> str:
    """The task module the quickstart writes with ``cat > tasks.py <<'PY'``."""
    match = re.search(r"<!-- quickstart-core:.*?<<'PY'\n(.*?)\nPY\n", README, re.S)
    assert match, "the quickstart writes no tasks.py"
    return match.group(1)


@pytest.fixture
def folder(tmp_path: Path, redis_server: RedisServer) -> Iterator[tuple[Path, dict[str, str]]]:
    """A folder with the quickstart's tasks.py and its worker running on a key prefix of
    the test's own."""
    (tmp_path / "tasks.py").write_text(quickstart_tasks())
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARQD_")}
    env |= {
        "REDIS_URL": redis_server.url,
        "ARQD_KEY_PREFIX": f"t{uuid.uuid4().hex[:10]}",
        "METRICS_PORT": "0",
    }
    worker = subprocess.Popen(
        [BIN / "arqd", "worker", "tasks"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield tmp_path, env
    worker.terminate()
    worker.wait(30)


def test_the_python_example_runs_as_a_file(folder: tuple[Path, dict[str, str]]) -> None:
    cwd, env = folder
    (cwd / "add.py").write_text(python_block("quickstart-python"))
    done = subprocess.run(
        [sys.executable, "add.py"], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3"
