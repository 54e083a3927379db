"""A one-second schedule on three worker processes, one SIGKILLed and restarted every
10 s: Redis holds exactly one task per tick, and a tick missing only where the misfire
policy counted it dropped. Two minutes on one server (``SCHEDULE_CRASH_SECONDS``),
20 s on a cluster."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter

import pytest

from arqd.core.settings import Settings
from arqd.store.codec import text
from arqd.store.store import Store
from conftest import WorkerProcess

KILL_EVERY = 10.0  # seconds


@pytest.mark.timeout(300)  # a two-minute run, then the checks
@pytest.mark.topologies("standalone", "cluster")
async def test_each_tick_runs_once_while_workers_are_killed(
    store: Store, settings: Settings, workers: list[WorkerProcess], topology: str
) -> None:
    seconds = float(os.environ.get("SCHEDULE_CRASH_SECONDS", "120"))
    if topology == "cluster":
        seconds = min(seconds, 20.0)
    for _ in range(3):
        workers.append(WorkerProcess(settings, "schedule_tasks"))
    started = time.monotonic()
    victim = 0
    while time.monotonic() - started < seconds:
        await asyncio.sleep(min(KILL_EVERY, seconds - (time.monotonic() - started)))
        workers[victim].signal(signal.SIGKILL)
        workers[victim].wait()
        workers[victim] = WorkerProcess(settings, "schedule_tasks")
        victim = (victim + 1) % 3
    for worker in workers:
        worker.signal(signal.SIGTERM)
    for worker in workers:
        worker.wait(30)

    queue = settings.queue
    state = await store.schedules.get("tick")
    assert state is not None
    ids = [i for i in await all_ids(store, queue) if i.startswith("s:tick:")]
    ticks = sorted(int(i.rsplit(":", 1)[1]) for i in ids)
    assert len(ticks) == len(set(ticks))
    assert len(ticks) >= seconds * 0.8
    spanned = (ticks[-1] - ticks[0]) // 1000 + 1
    # No tick is missing unless the misfire policy dropped it (and counted it).
    assert len(ticks) + state.dropped >= spanned
    assert state.runs == len(ticks)
    queued = Counter(
        text(e.fields[b"task"])
        for e in await store.events.read_after({queue: "0-0"}, block_ms=1, count=100_000)
        if e.fields[b"event"] in (b"queued", b"scheduled")
    )
    assert all(queued[i] == 1 for i in ids), "a tick was enqueued twice"
    print(f"{len(ticks)} ticks over {spanned} s, {state.dropped} dropped")


async def all_ids(store: Store, queue: str) -> set[str]:
    """Every task id of ``queue`` (its task hashes)."""
    prefix = store.keys.task(queue, "")
    found: set[str] = set()
    for node in await store.nodes.masters():
        async for key in node.redis.scan_iter(match=f"{prefix}*", count=1000):
            found.add(text(key)[len(prefix) :])
    return found
