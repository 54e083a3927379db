"""How long the dashboard takes to load and render in Chromium over 100,000 tasks.

    uv run python -m bench.ui_render [--tasks 100000] [--queues 20] [--loads 10]
        [--out bench/results/ui-render.md]

Starts a private redis-server and fills it: ``--tasks`` tasks over ``--queues`` queues of
uneven sizes (queue ``q00`` the busiest, the last the smallest), enqueued in batches of
1,000 with ``Client.enqueue_many``. An in-process worker then runs most of them: 85% succeed
and 8% fail at their first attempt (with a traceback); 4% stay scheduled an hour away and
3% stay queued (enqueued after the worker stopped). The API and dashboard are served from
this process (uvicorn in a thread, no worker, no API keys: the dashboard is open), and the
system's Chromium (headless, driven by playwright; never ``playwright install``) loads the
overview ``/ui``, the busiest queue's page and its failed tab ``?status=failed``, in turn,
``--loads`` times each (from about:blank each time; the first, cold, load counted too).

Each load is read from the page's own navigation timing: navigation start to the end of the
``load`` event, and the server's time, request sent to the response's first byte (the
dashboard renders a page whole before sending it). The issue's target: the overview and a
queue page each render in under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import uvicorn
from playwright.sync_api import Page, sync_playwright
from rich.progress import Progress, TaskID

from arqd.api import create_app
from arqd.api.ws_protocol import BoundedCloseProtocol
from arqd.client import Client
from arqd.core.settings import Settings
from arqd.core.task import NewTask
from arqd.worker import Registry, Worker
from bench.procs import REPO, free_port, redis_process
from bench.report import machine_info, table

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-background-networking"]  # as tests/ui
BATCH = 1000
TARGET_MS = 1000.0
NAVIGATION = "() => performance.getEntriesByType('navigation')[0].toJSON()"
LOADED = "() => performance.getEntriesByType('navigation')[0].loadEventEnd > 0"


class Declined(Exception):
    """What the failing task type raises: its tasks end ``failed`` with a traceback."""


registry = Registry()


@registry.task()
async def send_email(payload: dict[str, Any]) -> dict[str, Any]:
    return {"sent_to": payload["customer"], "message_id": f"m-{payload['order']}"}


@registry.task()
async def resize_image(payload: dict[str, Any]) -> dict[str, Any]:
    return {"width": 640, "height": 480, "order": payload["order"]}


@registry.task(max_retries=0, breaker=False)  # every one fails: no retries, no breaker
async def charge_card(payload: dict[str, Any]) -> None:
    raise Declined(f"card of {payload['customer']} declined for order {payload['order']}")


def plan(tasks: int, queues: int) -> list[tuple[str, int]]:
    """Each queue and how many tasks it gets: sizes fall linearly, ``q00`` the busiest."""
    weights = [queues - i for i in range(queues)]
    sizes = [tasks * w // sum(weights) for w in weights]
    sizes[0] += tasks - sum(sizes)
    return [(f"q{i:02d}", size) for i, size in enumerate(sizes)]


def new_task(queue: str, n: int) -> tuple[NewTask, bool]:
    """Task ``n`` of ``queue``, and whether the worker runs it (the rest stay waiting)."""
    payload = {"order": n, "customer": f"customer-{n % 997}@example.com", "items": n % 7 + 1}
    share = n % 100
    if share < 85:
        kind = "send_email" if n % 2 else "resize_image"
        return NewTask(kind, payload, queue=queue), True
    if share < 93:
        return NewTask("charge_card", payload, queue=queue), True
    if share < 97:
        return NewTask("send_email", payload, queue=queue, delay=3600), False
    return NewTask("resize_image", payload, queue=queue), False


async def enqueue(
    client: Client, tasks: Sequence[NewTask], progress: Progress, bar: TaskID
) -> None:
    for start in range(0, len(tasks), BATCH):
        batch = tasks[start : start + BATCH]
        await client.enqueue_many(batch)
        progress.advance(bar, len(batch))


async def run_all(client: Client, queues: list[str], count: int, progress: Progress) -> None:
    """Run ``count`` queued tasks with an in-process worker, then stop it."""
    bar = progress.add_task("run", total=count)
    worker = Worker(registry, client.store, queues=queues, concurrency=200)
    running = asyncio.create_task(worker.run(install_signals=False))
    while (done := await finished(client, queues)) < count:
        progress.update(bar, completed=done)
        await asyncio.sleep(0.2)
    progress.update(bar, completed=count)
    worker.stop()
    await running


async def finished(client: Client, queues: list[str]) -> int:
    return sum(s.succeeded + s.failed for s in await client.stats())


async def fill(settings: Settings, tasks: int, queues: int) -> dict[str, int]:
    """Fill the Redis as the module docstring says; the counts per status across queues."""
    made = [new_task(queue, n) for queue, size in plan(tasks, queues) for n in range(size)]
    ran = [task for task, runs in made if runs]
    wait = [task for task, runs in made if not runs]
    names = [queue for queue, _ in plan(tasks, queues)]
    async with Client.from_settings(settings) as client:
        with Progress() as progress:
            bar = progress.add_task("enqueue", total=tasks)
            later = [task for task in wait if task.delay is not None]
            await enqueue(client, [*ran, *later], progress, bar)
            await run_all(client, names, len(ran), progress)
            await enqueue(client, [task for task in wait if task.delay is None], progress, bar)
        stats = await client.stats()
    statuses = ("queued", "scheduled", "active", "succeeded", "failed", "cancelled")
    return {status: sum(getattr(s, status) for s in stats) for status in statuses}


@contextlib.contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The API and dashboard (no worker) on a free port, in a thread; yields its URL."""
    port = free_port()
    settings = settings.model_copy(update={"port": port})  # its open-API warning names it
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        server_header=False,
        ws=BoundedCloseProtocol,  # as ``arqd serve`` runs it
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@dataclass(frozen=True)
class Load:
    """One load of a page, in ms from navigation start, and what it showed."""

    load_ms: float
    server_ms: float
    html_bytes: int
    rows: int


def load_once(page: Page, url: str) -> Load:
    page.goto("about:blank")
    response = page.goto(url, wait_until="load")
    if response is None or response.status != 200:
        raise RuntimeError(f"{url}: {response and response.status}")
    page.wait_for_function(LOADED)
    timing = page.evaluate(NAVIGATION)
    return Load(
        load_ms=timing["loadEventEnd"] - timing["startTime"],
        server_ms=timing["responseStart"] - timing["requestStart"],
        html_bytes=int(timing["decodedBodySize"]),
        rows=page.locator("tbody tr").count(),
    )


def measure(base: str, pages: dict[str, str], loads: int) -> tuple[str, dict[str, list[Load]]]:
    """Chromium's version, and ``loads`` loads of each page, the pages in turn."""
    found: dict[str, list[Load]] = {name: [] for name in pages}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        for _ in range(loads):
            for name, path in pages.items():
                found[name].append(load_once(page, base + path))
        version = browser.version
        browser.close()
    return version, found


def report(
    info: dict[str, str],
    counts: dict[str, int],
    pages: dict[str, str],
    loads: dict[str, list[Load]],
) -> str:
    lines = ["# Dashboard render times in Chromium", ""]
    mix = ", ".join(f"{status} {n:,}" for status, n in counts.items() if n)
    lines += table(["", ""], [*info.items(), ("tasks by status", mix)])
    lines += [
        "Each page loaded in turn, from about:blank, the first (cold) load counted. Load: "
        "navigation start to the end of the `load` event; server: request sent to the first "
        "byte of the response. Target: under 1 s (judged on the slowest load).",
        "",
    ]
    rows = []
    for name, path in pages.items():
        got = loads[name]
        load = [x.load_ms for x in got]
        server = [x.server_ms for x in got]
        rows.append((
            name, f"`{path}`", got[-1].rows, f"{got[-1].html_bytes / 1024:,.0f} KiB",
            f"{statistics.median(load):,.0f}", f"{max(load):,.0f}",
            f"{statistics.median(server):,.0f}", f"{max(server):,.0f}",
            "✅" if max(load) < TARGET_MS else "❌",
        ))  # fmt: skip
    headers = ["page", "path", "table rows", "HTML", "load median ms", "load max ms",
               "server median ms", "server max ms", "under 1 s"]  # fmt: skip
    return "\n".join(lines + table(headers, rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--queues", type=int, default=20)
    parser.add_argument("--loads", type=int, default=10, help="loads of each page")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "ui-render.md")
    args = parser.parse_args()
    busiest = plan(args.tasks, args.queues)[0][0]
    pages = {
        "overview": "/ui",
        "queue": f"/ui/queues/{busiest}",
        "queue, failed tab": f"/ui/queues/{busiest}?status=failed",
    }
    with redis_process() as (url, _):
        with redis.Redis.from_url(url) as server:
            info = machine_info(server.info("server")["redis_version"])
        settings = Settings(redis_url=url, requests_per_minute=0, log_level="WARNING")
        counts = asyncio.run(fill(settings, args.tasks, args.queues))
        with serving(settings) as base:
            chromium, loads = measure(base, pages, args.loads)
    info["browser"] = f"Chromium {chromium}, headless, playwright; {args.loads} loads a page"
    info["data"] = f"{args.tasks:,} tasks over {args.queues} queues ({busiest} the busiest)"
    text = report(info, counts, pages, loads)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
