"""One dedupe key, enqueued concurrently from two processes, makes exactly one task: the
decision is the enqueue script's, atomic in Redis, whoever sends it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from arqd.client import Client
from arqd.core.dedupe import Dedupe
from arqd.core.settings import Settings
from arqd.store.store import Store
from conftest import worker_environment

PRODUCER = Path(__file__).parent / "dedupe_producer.py"
EACH = 50


@pytest.mark.topologies("standalone", "cluster")
async def test_a_hundred_concurrent_enqueues_from_two_processes_make_one_task(
    client: Client, store: Store, settings: Settings
) -> None:
    other = await asyncio.create_subprocess_exec(
        sys.executable,
        str(PRODUCER),
        "race",
        str(EACH),
        env=worker_environment(settings),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert other.stdin is not None
        assert other.stdout is not None
        assert await other.stdout.readline() == b"ready\n"
        await client.store.redis.ping()  # this side's connection is made too
        other.stdin.write(b"go\n")
        once = Dedupe("race", "until_finished")
        ours = await asyncio.gather(*(client.enqueue("job", n, dedupe=once) for n in range(EACH)))
        out, _ = await asyncio.wait_for(other.communicate(), 60)
        theirs = out.decode()
    finally:
        if other.returncode is None:
            other.kill()
            await other.wait()
    ids = {task.id for task in ours} | set(theirs.split())
    assert len(ids) == 1
    assert len(theirs.split()) == EACH
    (stats,) = await client.stats("default")
    assert (stats.queued, stats.scheduled) == (1, 0)
    entries = await store.events.read_after({"default": "0-0"}, block_ms=1, count=10_000)
    events = [(e.fields[b"event"], e.fields[b"task"].decode()) for e in entries]
    assert events.count((b"queued", ids.pop())) == 1
    assert sum(event == b"deduplicated" for event, _ in events) == 2 * EACH - 1
