"""``arqd inspect`` shows each schedule: its timing, next run (or why it is paused), its
last run and that run's outcome."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from arqd.client import Client
from arqd.core.schedules import Schedule
from arqd.core.settings import Settings
from arqd.store.schedules import Tick


async def test_inspect_lists_schedules_with_next_and_last_runs(
    client: Client, api_settings: Settings
) -> None:
    await client.schedules.upsert(Schedule("nightly", "report", cron="30 2 * * *", tz="Asia/Tokyo"))
    hourly = await client.schedules.upsert(Schedule("hourly", "sync", every=3600))
    await client.schedules.pause("hourly", "vendor outage")
    store, settings = client.store.schedules, api_settings
    minutely = Schedule("minutely", "ping", every=60).on(settings.queue)
    await store.upsert(minutely, datetime.now(UTC) - timedelta(seconds=1))
    (due,) = (await store.poll([settings.queue])).due
    await store.fire(due, [Tick("s:minutely:1", due.tick)], due.tick + timedelta(minutes=1), 0)

    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url or "",
        "ARQD_KEY_PREFIX": settings.key_prefix,
        "COLUMNS": "250",
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "arqd", "inspect"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = done.stdout
    lines = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 8}
    assert "30 2 * * * (Asia/Tokyo)" in lines["nightly"]
    assert "paused: vendor outage" in lines["hourly"]
    assert hourly.runs == 0
    assert "every 60 s" in lines["minutely"]
    assert "queued" in lines["minutely"]  # the last run's task, still waiting
    assert " 1 " in lines["minutely"].split("│")[-2] + " "
