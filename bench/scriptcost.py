"""Instructions redis-server spends per task in each of arqd's hot scripts.

    .venv/bin/python -m bench.scriptcost [--tasks 2000] [--out bench/results/scriptcost.md]

Timings of a few microseconds swing by half from one run to the next on a shared virtual
machine; instruction counts do not. This runs a private ``redis-server`` under valgrind's
callgrind and counts what it executes while arqd's own Store enqueues ``tasks`` no-op
tasks one call at a time, then as many in batches of 1,000, then leases and answers one
in eight of them one at a time (an idle worker woken for each task), then the rest 64 at a
time (a busy worker's batch). Each phase is counted on its own (``callgrind_control
--dump`` between them) and divided by the tasks it handled, so the figures include Redis
reading the command and writing the reply, as in production. Needs ``valgrind``
(Debian's package of that name); Redis runs about 50 times slower under it, which changes
no count.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console

from arqd.core.lease import Answer
from arqd.core.settings import Settings
from arqd.core.task import NewTask
from arqd.store.connection import connect
from arqd.store.store import Store
from bench.procs import redis_process
from bench.report import machine_info, table

PHASES = (
    "enqueue, one call at a time",
    "enqueue, batches of 1,000",
    "dequeue",
    "finish",
    "dequeue, one task a call",
    "finish, one task a call",
)
LEASE_BATCH = 64  # tasks a dequeue or finish call handles: a busy worker's (worker.py)
SINGLES = 8  # 1 in SINGLES tasks is leased and answered alone, as by a worker woken for it
_TOTALS = re.compile(r"^(?:summary|totals):\s+(\d+)", re.MULTILINE)
_CRON = re.compile(r"^\s*([\d,]+) \([^)]*\)\s+\S*:serverCron ", re.MULTILINE)


async def _workload(url: str, tasks: int, dump: Callable[[str], None]) -> str:
    """Each phase, then ``dump(phase)`` so its instructions are counted on their own;
    returns the server's version. Leasing and answering alternate, a batch of each at a
    time, so the active set stays as small as under one busy worker; first, some tasks are
    leased and answered one at a time, as an idle worker woken for each does."""
    # Leases long enough to outlast the run: Redis is slow under valgrind, and a lapsed
    # lease would add reclaiming to what is counted.
    store = Store(connect(url), Settings(redis_url=url, lease_timeout=3_600_000))
    try:
        version = str((await store.redis.info("server"))["redis_version"])
        await store.tasks.enqueue_one(NewTask("noop", {}))  # load the scripts; not counted
        leases = (await store.leases.dequeue("default", 1, "bench")).leases
        await store.leases.finish("default", [Answer(leases[0], "succeeded", b"null")])
        dump("start")
        for _ in range(tasks):
            await store.tasks.enqueue_one(NewTask("noop", {}))
        dump(PHASES[0])
        for start in range(0, tasks, 1000):
            await store.tasks.enqueue(
                [NewTask("noop", {}) for _ in range(min(1000, tasks - start))]
            )
        dump(PHASES[1])
        for _ in range(_singles(tasks)):
            leases = (await store.leases.dequeue("default", 1, "bench")).leases
            dump(PHASES[4])
            assert await store.leases.finish("default", [Answer(leases[0], "succeeded", b"null")])
            dump(PHASES[5])
        for _ in range(0, 2 * tasks - _singles(tasks), LEASE_BATCH):
            leases = (await store.leases.dequeue("default", LEASE_BATCH, "bench")).leases
            dump(PHASES[2])
            answers = [Answer(lease, "succeeded", b"null") for lease in leases]
            assert all(await store.leases.finish("default", answers))
            dump(PHASES[3])
        return version
    finally:
        await store.close()


def measure(tasks: int, keep: Path | None = None) -> tuple[dict[str, float], str]:
    """Instructions per task of each phase (see the module's docstring), and the Redis
    version. ``keep``: a folder for callgrind's files, to read with callgrind_annotate
    (``callgrind.out.N`` is the Nth phase counted, in the order ``phases.txt`` lists)."""
    valgrind = shutil.which("valgrind")
    if not valgrind:
        raise SystemExit("needs valgrind on the PATH (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="arqd-scriptcost-") as scratch:
        folder = keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        out = folder / "callgrind.out"
        wrapper = [valgrind, "--tool=callgrind", f"--callgrind-out-file={out}"]
        dumped: list[str] = []
        with redis_process(wrapper, folder, start_timeout=60) as (url, process):

            def dump(phase: str) -> None:
                subprocess.run(["callgrind_control", "--dump", str(process.pid)],
                               check=True, capture_output=True)  # fmt: skip
                dumped.append(phase)

            version = asyncio.run(_workload(url, tasks, dump))
        (folder / "phases.txt").write_text("\n".join(dumped) + "\n")
        counts = dict.fromkeys(PHASES, 0)
        for i, phase in enumerate(dumped, start=1):
            if phase in counts:
                counts[phase] += _total(out.with_name(f"{out.name}.{i}"))
    singles, batched = _singles(tasks), 2 * tasks - _singles(tasks)
    handled = (tasks, tasks, batched, batched, singles, singles)
    costs = {phase: counts[phase] / k for phase, k in zip(PHASES, handled, strict=True)}
    return costs, version


def _singles(tasks: int) -> int:
    return 2 * tasks // SINGLES


def _total(path: Path) -> int:
    """A dump's instructions, less Redis's timer work (``serverCron``): that runs ten times
    a second of wall time, and under valgrind a phase lasts fifty times longer than it
    would, which would put a share of the timer into every task's count."""
    match = _TOTALS.search(path.read_text())
    if match is None:
        raise RuntimeError(f"no instruction total in {path}")
    return int(match.group(1)) - _timer_work(path)


def _timer_work(path: Path) -> int:
    report = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    match = _CRON.search(report)
    return int(match.group(1).replace(",", "")) if match else 0


def render(costs: dict[str, float], version: str, tasks: int) -> str:
    lines = ["# Instructions per task in arqd's scripts (redis-server under callgrind)", ""]
    lines += table(["", ""], [*machine_info(version).items(), ("tasks per phase", f"{tasks:,}")])
    lines += table(["phase", "instructions per task"], [(p, f"{n:,.0f}") for p, n in costs.items()])
    per_task = costs["enqueue, batches of 1,000"] + costs["dequeue"] + costs["finish"]
    lines += [f"A task's whole life (batch enqueue, dequeue, finish): {per_task:,.0f}.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.scriptcost", description=__doc__)
    p.add_argument("--tasks", type=int, default=2000, help="tasks per phase (2000)")
    p.add_argument("--out", type=Path, default=Path("bench/results/scriptcost.md"))
    p.add_argument("--keep", type=Path, help="keep callgrind's files in this folder")
    args = p.parse_args(argv)
    console = Console(stderr=True)
    with console.status("running redis-server under callgrind (about a minute)"):
        costs, version = measure(args.tasks, args.keep)
    report = render(costs, version, args.tasks)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report + "\n")
    Console(soft_wrap=True).print(report, markup=False, highlight=False)


if __name__ == "__main__":
    main()
