"""A worker process stays light: no web stack, no OpenTelemetry SDK or trace API, no
prometheus_client or rich unless it uses them (bench.compare, worker peak RSS)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = (
    "fastapi",
    "starlette",
    "uvicorn",
    "opentelemetry.sdk",
    "opentelemetry.trace",
    "rich",
    "prometheus_client",
)


def loaded_after(code: str) -> set[str]:
    """The modules of HEAVY a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    modules = json.loads(out.splitlines()[-1])
    return {m for m in modules for h in HEAVY if m == h or m.startswith(f"{h}.")}


@pytest.mark.parametrize(
    "code",
    [
        "import arqd.worker",
        "from arqd.worker import PipelinedRedis, Registry, TaskContext, TaskType, Worker",
        "import arqd.cli, arqd.worker.supervision",
        "import arqd.benchmark",  # the task types bench.compare's arqd worker runs
    ],
)
def test_a_worker_imports_nothing_heavy(code: str) -> None:
    assert loaded_after(code) == set()


def test_the_probe_sees_heavy_imports() -> None:
    assert {"fastapi", "starlette"} <= loaded_after("import arqd.api.app")
