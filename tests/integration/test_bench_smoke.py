"""The core benchmark end to end with tiny numbers: every section is there, values are sane.

It runs ``python -m bench.core`` as documented, from the repository root (``bench`` is not
an installed package). No timing thresholds: this machine's speed is not under test.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import RedisServer
from tools import CHROMIUM, VALGRIND, require

REPO = Path(__file__).resolve().parents[2]
SECTIONS = (
    "## Against the targets",
    "## Enqueue",
    "## Processing",
    "## Enqueue-to-start latency",
    "## Redis memory",
)


def run_module(module: str, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """``python -m MODULE ARGS`` from the repository root, as documented; it must succeed."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def run_bench(redis_url: str, out: Path) -> dict[str, Any]:
    args = [
        "--redis-url", redis_url, "--out", str(out), "--tasks", "200", "--rate", "100",
        "--high-rate", "0", "--seconds", "1", "--concurrency", "20", "--runs", "1",
        "--baseline-seconds", "0.5",
    ]  # fmt: skip
    done = run_module("bench.core", args, timeout=100)
    report = out.read_text()
    assert report.strip() in done.stdout.replace("\r", "")
    for section in SECTIONS:
        assert section in report
    data: dict[str, Any] = json.loads(out.with_suffix(".json").read_text())
    return data


def test_bench_runs_and_reports(redis_server: RedisServer, tmp_path: Path) -> None:
    data = run_bench(redis_server.url, tmp_path / "core.md")
    assert data["system"] == "arqd"
    assert data["machine"]["arqd commit"]

    assert [e["tasks"] for e in data["enqueue"]] == [200, 200, 200, 200]  # + the INCR floor
    assert all(e["seconds"] > 0 for e in data["enqueue"])
    assert all(e["client_cpu_us"] >= 0 and e["redis_cpu_us"] >= 0 for e in data["enqueue"])
    assert sum(e["redis_cpu_us"] for e in data["enqueue"]) > 0  # Redis did the work

    processing = data["processing"]
    assert [(p["workload"], p["concurrency"], p["quiet"]) for p in processing] == [
        ("noop", 20, True),
        ("incr", 20, True),
        ("incr_plain", 20, True),
        ("noop", 20, False),
    ]
    for p in processing:
        (run,) = p["runs"]
        assert run["rate"] > 0
        assert run["worker_cpu_us"] >= 0  # 200 tasks may take less than one clock tick
        assert 10 * 2**20 < run["peak_rss"] < 2 * 2**30

    arqd, baseline = data["latency"]
    assert arqd["label"].startswith("arqd")
    assert baseline["label"].startswith("baseline")
    assert (arqd["tasks"], baseline["tasks"]) == (100, 50)
    for x in (arqd, baseline):
        assert 0 < x["p50"] <= x["p95"] <= x["p99"] <= x["max"] < 10_000

    memory = data["memory"]
    assert 20 < memory["bytes_per_task"] < 10_000
    assert len(memory["breakdown"]) == 3


def test_compare_runs_arqd_side_by_side(tmp_path: Path) -> None:
    """``python -m bench.compare`` for arqd alone (arqd needs no peer environment): every
    workload has a figure, and the report has each section. It starts its own Redis."""
    out = tmp_path / "compare.md"
    args = [
        "--systems", "arqd", "--quick", "--tasks", "2000", "--seconds", "1", "--rates", "100",
        "--out", str(out),
    ]  # fmt: skip
    run_module("bench.compare", args, timeout=110)
    report = out.read_text()
    for section in ("## Throughput, memory", "## Enqueue-to-start latency", "## Worker settings"):
        assert section in report
    assert "failed" not in report
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["environment"]["arqd version"]
    (run,) = data["runs"]
    assert run["system"] == "arqd"
    assert run["errors"] == {}
    for key in ("enqueue_one", "enqueue_batch", "bytes_per_task"):
        assert run[key] > 0, key
    assert "plain redis.asyncio pool" in report
    for key in ("default", "tuned", "noop", "incr_plain"):
        assert run[key]["rate"] > 0, key
        assert 10 * 2**20 < run[key]["peak_rss"] < 2 * 2**30
    (latency,) = run["latency"]
    assert latency["rate"] == 100
    assert 90 <= latency["sent"] <= 100  # the producer stops on time, even if behind
    assert latency["started"] == latency["sent"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"] < 10_000


def test_scriptcost_counts_each_phase_under_callgrind(tmp_path: Path) -> None:
    """``python -m bench.scriptcost`` with a few tasks: a count for every phase, each in a
    plausible range, and the batch's per-task cost below the single call's."""
    require(VALGRIND)
    out = tmp_path / "scriptcost.md"
    run_module("bench.scriptcost", ["--tasks", "128", "--out", str(out)], timeout=200)
    rows = dict(
        line.strip("| ").split(" | ")
        for line in out.read_text().splitlines()
        if line.startswith(("| enqueue", "| dequeue", "| finish"))
    )
    counts = {phase: int(n.replace(",", "")) for phase, n in rows.items()}
    assert set(counts) == {
        "enqueue, one call at a time",
        "enqueue, batches of 1,000",
        "dequeue",
        "finish",
        "dequeue, one task a call",
        "finish, one task a call",
    }
    assert all(5_000 < n < 5_000_000 for n in counts.values()), counts
    assert counts["dequeue"] < counts["dequeue, one task a call"]
    assert counts["enqueue, batches of 1,000"] < counts["enqueue, one call at a time"]


def test_ui_render_times_each_page_in_chromium(tmp_path: Path) -> None:
    """``python -m bench.ui_render`` over 200 tasks in 2 queues: a row for each page, each
    with a plausible load time and table, and every status the mix makes. It starts its
    own Redis."""
    require(CHROMIUM)
    out = tmp_path / "ui-render.md"
    args = ["--tasks", "200", "--queues", "2", "--loads", "2", "--out", str(out)]
    run_module("bench.ui_render", args, timeout=120)
    report = out.read_text()
    assert "| data | 200 tasks over 2 queues (q00 the busiest) |" in report
    for status in ("queued", "scheduled", "succeeded", "failed"):
        assert f"{status} " in report.split("| tasks by status |")[1].splitlines()[0]
    rows = {
        cells[0]: cells
        for line in report.splitlines()
        if line.startswith("| ") and len(cells := line.strip("| ").split(" | ")) == 9
    }
    assert rows["overview"][1] == "`/ui`"
    assert rows["queue"][1] == "`/ui/queues/q00`"
    assert rows["queue, failed tab"][1] == "`/ui/queues/q00?status=failed`"
    pages = ("overview", "queue", "queue, failed tab")
    # Two queues; q00 holds 134 tasks (a page of 50 shown), of which numbers 85 to 92 fail.
    assert [rows[page][2] for page in pages] == ["2", "50", "8"]
    for page in pages:
        times = (float(x.replace(",", "")) for x in rows[page][4:8])
        load_median, load_max, server_median, server_max = times
        assert 0 < load_median <= load_max < 30_000
        assert 0 <= server_median <= server_max <= load_max


def test_the_progress_benchmark_counts_writes_and_events(redis_server: RedisServer) -> None:
    args = ["--calls", "2000", "--redis-url", redis_server.url]
    done = run_module("bench.progress", args, timeout=120)
    rows = re.findall(r"(\d+) writes +(\d+) events", done.stdout)
    assert len(rows) == 4, done.stdout
    for writes, events in rows:
        assert 1 <= int(writes) <= 20  # one every 150 ms over about a second, and the last
        assert events == writes  # each write carried something new


def test_the_workflows_benchmark_creates_and_ends_groups(tmp_path: Path) -> None:
    out = tmp_path / "workflows.md"
    run_module("bench.workflows", ["--members", "300", "--runs", "2", "--out", str(out)], 120)
    report = out.read_text()
    (row,) = [line for line in report.splitlines() if "bytes a member adds" in line]
    per_member = float(row.split("|")[2].replace(",", ""))
    assert 0 < per_member < 100  # the bound: about 100 B of Redis a member
    assert "the finish that ends the group" in report
