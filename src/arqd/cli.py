"""The ``arqd`` command: worker, serve, enqueue, pause, resume, inspect, bench, embedded,
workflow (``arqd.cli_workflows``).

How it ends (exit codes, one-line errors) is ``arqd.exits``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from arqd import cli_worker as process
from arqd import exits
from arqd.cli_workflows import workflow_app
from arqd.core.settings import Settings
from arqd.core.urls import redacted
from arqd.exits import CommandErrors

if TYPE_CHECKING:
    from rich.console import Console

    from arqd.core.task import Task

T = TypeVar("T")
# Plain help (no rich panels): typer's rich help shows a value after flags that take none.
app = typer.Typer(
    help="arqd: a production task queue on Redis.",
    epilog=exits.HELP,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
embedded_app = typer.Typer(
    help="The embedded Redis-compatible server (used with no REDIS_URL).",
    rich_markup_mode=None,
    no_args_is_help=True,
)
app.add_typer(embedded_app, name="embedded")
app.add_typer(workflow_app, name="workflow")


def _console(stderr: bool = False) -> Console:
    """rich, imported when something is printed: a worker never loads it (~2 MB RSS)."""
    from rich.console import Console

    return Console(stderr=stderr)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


@app.command(epilog=exits.HELP)
def worker(
    target: Annotated[str, typer.Argument(help="MODULE[:ATTR] declaring the task types")],
    queue: Annotated[
        list[str] | None, typer.Option("--queue", "-q", help="Queue(s) to serve")
    ] = None,
    concurrency: Annotated[int | None, typer.Option(min=1, help="Tasks run at once")] = None,
) -> None:
    """Run a worker for the task types declared in MODULE[:ATTR]. A Redis it cannot reach
    is waited for (said once); a malformed REDIS_URL stops it at once."""
    from arqd.observability.logs import setup_logging
    from arqd.store.embedded import EmbeddedServer
    from arqd.worker.storage import open_store
    from arqd.worker.supervision import EmbeddedWatch, Supervisor

    settings = exits.settings()
    setup_logging(settings.log_level, settings.log_format)
    with CommandErrors(settings) as errors:
        registry = process.load_registry(target)
        url = errors.connect()
    store = open_store(url, settings)
    traced = process.tracing(settings)
    metrics = process.metrics(settings)
    supervisor = Supervisor(
        registry,
        store,
        queue,
        concurrency,
        metrics,
        traced=traced,
        owns_store=True,
        where=f"Redis at {redacted(url)}",
    )
    embedded = EmbeddedServer(settings.data_dir)
    watch = None if settings.redis_url else EmbeddedWatch(embedded, supervisor, url)
    _run(process.work(supervisor, settings, watch))


@app.command(epilog=exits.HELP)
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default ARQD_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default ARQD_PORT, 3000)")] = None,
    app_target: Annotated[
        str | None, typer.Option("--app", help="MODULE[:ATTR] with your task types")
    ] = None,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="API only, no worker")] = False,
) -> None:
    """Serve the HTTP API (with an in-process worker unless --no-worker). A Redis it cannot
    reach gets 503 answers until it comes up; a malformed REDIS_URL stops it at once."""
    from arqd.api.server import serve as run_server

    settings = exits.settings()
    with CommandErrors(settings) as errors:
        registry = process.load_registry(app_target) if app_target else None
        url = errors.connect()
    run_server(
        settings.model_copy(update={"redis_url": url}),
        host or settings.host,
        port if port is not None else settings.port,
        registry,
        with_worker=not no_worker,
    )


# enqueue's options, named once each so that its signature reads as a list.
TaskType = Annotated[str, typer.Argument(help="Task type name")]
Payload = Annotated[str, typer.Option(help="Payload as JSON")]
Queue = Annotated[str | None, typer.Option(help="Queue (default ARQD_QUEUE)")]
Priority = Annotated[int, typer.Option(help="Higher runs first")]
Delay = Annotated[float | None, typer.Option(min=0, help="Seconds before it may run")]
MaxRetries = Annotated[
    int | None, typer.Option(min=0, help="Retries after the first attempt (default: the type's)")
]
TaskTimeout = Annotated[
    float | None,
    typer.Option(min=0.001, help="Limit of one attempt, seconds (default: the type's)"),
]
IdempotencyKey = Annotated[str | None, typer.Option(help="A repeat returns the first task")]
Wait = Annotated[bool, typer.Option("--wait", help="Wait for the task to finish")]
WaitTimeout = Annotated[
    float | None, typer.Option(min=0, help="How long to wait, seconds (implies --wait; default 60)")
]
ExpiresIn = Annotated[
    float | None, typer.Option(min=0, help="Never start it after this many seconds")
]
OldTimeout = Annotated[
    float | None, typer.Option("--timeout", min=0, hidden=True, help="Old --wait-timeout")
]


@app.command(epilog=exits.HELP)
def enqueue(
    task_type: TaskType,
    payload: Payload = "null",
    queue: Queue = None,
    priority: Priority = 0,
    delay: Delay = None,
    max_retries: MaxRetries = None,
    task_timeout: TaskTimeout = None,
    idempotency_key: IdempotencyKey = None,
    expires_in: ExpiresIn = None,
    wait: Wait = False,
    wait_timeout: WaitTimeout = None,
    old_timeout: OldTimeout = None,
) -> None:
    """Enqueue a task and print it as JSON, as the API shows it (with --wait or
    --wait-timeout, once it has finished: exit 0 if it succeeded, 1 if not, 4 if the wait
    ran out)."""
    data = _payload(payload)
    settings = exits.settings()
    waiting = _wait_seconds(wait, wait_timeout, old_timeout)
    options = {
        "queue": queue,
        "priority": priority,
        "delay": delay,
        "max_retries": max_retries,
        "timeout": task_timeout,
        "idempotency_key": idempotency_key,
        "expires_in": expires_in,
    }
    with CommandErrors(settings) as errors:
        main = _enqueue(errors.connect(), settings, task_type, data, options, waiting)
        task, finished = _run(main)
    _print_task(task)
    if waiting is not None:
        _end_of_wait(task, finished, waiting)


def _wait_seconds(wait: bool, wait_timeout: float | None, old: float | None) -> float | None:
    """How long enqueue waits for the task (None: it does not)."""
    if old is not None:
        typer.echo(
            "warning: --timeout is deprecated: use --wait-timeout (how long --wait waits); "
            "a task's own time limit is --task-timeout",
            err=True,
        )
    if wait_timeout is not None:
        return wait_timeout
    return (60.0 if old is None else old) if wait else None


def _payload(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise exits.fail(f"--payload is not valid JSON: {exc}", exits.USAGE) from None


def _print_task(task: Task) -> None:
    from arqd.core.wire import dumps, task_json

    typer.echo(dumps(task_json(task), indent=True).decode())


def _end_of_wait(task: Task, finished: bool, seconds: float) -> None:
    if not finished:
        raise exits.fail(
            f"task {task.id} is still {task.status} after {seconds:g} s "
            "(wait longer with --wait-timeout SECONDS)",
            exits.WAIT_RAN_OUT,
        )
    if task.status != "succeeded":
        raise typer.Exit(exits.NO)


async def _enqueue(
    url: str,
    settings: Settings,
    task_type: str,
    payload: Any,
    options: dict[str, Any],
    wait: float | None,
) -> tuple[Task, bool]:
    """Enqueue one task; with ``wait`` (seconds), the task once it has finished (or as it
    is when the wait runs out), and whether it has."""
    from arqd.client import REQUESTS, Client
    from arqd.core.errors import TaskNotFound, TaskWaitTimeout

    async with Client.connect(url, settings, REQUESTS) as client:
        task = await client.enqueue(task_type, payload, **options)
        if wait is None:
            return task, False
        try:
            return await client.wait(task.id, timeout=wait), True
        except TaskWaitTimeout:
            now = await client.get(task.id, task.queue)
            if now is None:
                raise TaskNotFound(task.id) from None
            return now, now.status.is_finished


PausedType = Annotated[str | None, typer.Option("--type", help="Only this task type")]
Reason = Annotated[str, typer.Option(help="Why, for operators (events, dashboard, inspect)")]


@app.command(epilog=exits.HELP)
def pause(queue: str, task_type: PausedType = None, reason: Reason = "") -> None:
    """Pause QUEUE (or its tasks of --type): none starts until resumed; running ones
    finish. Prints what of the queue is paused, as JSON."""
    _control("pause", queue, task_type, reason)


@app.command(epilog=exits.HELP)
def resume(queue: str, task_type: PausedType = None, reason: Reason = "") -> None:
    """Resume QUEUE (or its tasks of --type): its backlog starts at once."""
    _control("resume", queue, task_type, reason)


def _control(action: str, queue: str, task_type: str | None, reason: str) -> None:
    settings = exits.settings()
    with CommandErrors(settings) as errors:
        state = _run(_controlled(errors.connect(), settings, action, (queue, task_type, reason)))
    from arqd.core.wire import dumps

    typer.echo(dumps(state, indent=True).decode())


async def _controlled(
    url: str, settings: Settings, action: str, target: tuple[str, str | None, str]
) -> dict[str, Any]:
    from arqd.client import REQUESTS, Client

    async with Client.connect(url, settings, REQUESTS) as client:
        queues = client.queues
        state = await (queues.pause if action == "pause" else queues.resume)(*target)
        return state.to_dict()


@app.command(epilog=exits.HELP)
def inspect(
    watch: Annotated[bool, typer.Option("--watch", help="Refresh until interrupted")] = False,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between refreshes")] = 1.0,
) -> None:
    """Show queues, their counts and pauses, and live workers (with --watch, until Ctrl-C
    or SIGTERM, which leave the terminal as it was)."""
    settings = exits.settings()
    with CommandErrors(settings) as errors:
        _run(_inspect(errors.connect(), settings, watch, interval))


async def _inspect(url: str, settings: Settings, watch: bool, interval: float) -> None:
    from arqd.client import REQUESTS, Client

    async with Client.connect(url, settings, REQUESTS) as client:
        from rich.live import Live

        from arqd.cli_inspect import inspect_tables as _inspect_tables

        console = _console()
        if not watch:
            console.print(await _inspect_tables(client))
            return
        stop = _stop_on_signals()
        # Live hides the cursor until its block ends: a signal must end the block, not
        # the process, or the terminal keeps no cursor.
        with Live(await _inspect_tables(client), console=console) as live:
            while not await _stopped(stop, interval):
                live.update(await _inspect_tables(client))


def _stop_on_signals() -> asyncio.Event:
    """An event SIGTERM and SIGINT set (instead of ending the process where it stands)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Whether ``stop`` is set within ``seconds``."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


@app.command(epilog=exits.HELP)
def bench(
    tasks: Annotated[int, typer.Option(min=1, help="Tasks per workload")] = 20_000,
    rate: Annotated[int, typer.Option(min=1, help="Tasks/s for the latency run")] = 500,
    seconds: Annotated[float, typer.Option(min=0.1, help="Length of the latency run")] = 10.0,
    concurrency: Annotated[int, typer.Option(min=1, help="The worker's concurrency")] = 200,
) -> None:
    """Measure arqd on this Redis (REDIS_URL, or the embedded server): enqueue, processing
    and latency, with progress bars and a summary table. Works under a key prefix of its own."""
    from arqd.benchmark import render, run_benchmark

    settings = exits.settings()
    with CommandErrors(settings) as errors:
        results = run_benchmark(errors.connect(), tasks, rate, seconds, concurrency)
    _console().print(render(results))


@embedded_app.command("status", epilog=exits.HELP)
def embedded_status() -> None:
    """Say whether the embedded server for ARQD_DATA_DIR runs, and its URL."""
    from arqd.store.embedded import EmbeddedServer

    server = EmbeddedServer(exits.settings().data_dir)
    if server.is_running():
        typer.echo(f"running: {server.url}")
    else:
        typer.echo("not running")
        raise typer.Exit(exits.NO)


@embedded_app.command("stop", epilog=exits.HELP)
def embedded_stop() -> None:
    """Stop the embedded server for ARQD_DATA_DIR (its data stays in the folder). Workers
    using it say so and wait; the next start uses the same port, so they carry on."""
    from arqd.store.embedded import EmbeddedServer

    settings = exits.settings()
    server = EmbeddedServer(settings.data_dir)
    with CommandErrors(settings):
        stopped = server.stop()
    typer.echo(f"stopped (its data stays in {server.data_dir})" if stopped else "not running")


def main() -> None:
    app()
