"""The ``arqd`` command: worker, enqueue, inspect, embedded."""

from __future__ import annotations

import asyncio
import gc
import importlib
import json
import sys
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from arqd.core.errors import ArqdError, ConfigurationError
from arqd.core.settings import Settings
from arqd.worker.registry import Registry

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from arqd.client import Client, QueueStats, WorkerInfo
    from arqd.observability.metrics import Metrics
    from arqd.worker.supervision import Supervisor

T = TypeVar("T")
app = typer.Typer(help="arqd: a production task queue on Redis.", no_args_is_help=True)
embedded_app = typer.Typer(help="The embedded Redis-compatible server (used with no REDIS_URL).")
app.add_typer(embedded_app, name="embedded")


def _console(stderr: bool = False) -> Console:
    """rich, imported when something is printed: a worker never loads it (~2 MB RSS)."""
    from rich.console import Console

    return Console(stderr=stderr)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigurationError as exc:
        _console(stderr=True).print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def _fail(message: str, code: int = 1) -> typer.Exit:
    _console(stderr=True).print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def load_registry(target: str) -> Registry:
    """Import ``MODULE[:ATTR]``; without ATTR, the module's one Registry."""
    module_name, _, attr = target.partition(":")
    sys.path.insert(0, ".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import {module_name!r}: {exc}") from exc
    if attr:
        found = getattr(module, attr, None)
        if not isinstance(found, Registry):
            raise ConfigurationError(f"{target!r} is not an arqd Registry")
        return found
    registries = [v for v in vars(module).values() if isinstance(v, Registry)]
    if len(registries) != 1:
        raise ConfigurationError(
            f"{module_name!r} has {len(registries)} Registry objects; name one as MODULE:ATTR"
        )
    return registries[0]


@app.command()
def worker(
    target: Annotated[str, typer.Argument(help="MODULE[:ATTR] declaring the task types")],
    queue: Annotated[
        list[str] | None, typer.Option("--queue", "-q", help="Queue(s) to serve")
    ] = None,
    concurrency: Annotated[int | None, typer.Option(help="Tasks run at once")] = None,
) -> None:
    """Run a worker for the task types declared in MODULE[:ATTR]."""
    from arqd.observability.logs import setup_logging
    from arqd.store.connection import resolve_url
    from arqd.worker.storage import open_store
    from arqd.worker.supervision import Supervisor

    settings = _settings()
    setup_logging(settings.log_level, settings.log_format)
    try:
        registry = load_registry(target)
        store = open_store(resolve_url(settings), settings)
    except ArqdError as exc:
        raise _fail(str(exc), 2) from None
    traced = _tracing(settings)
    metrics = _metrics(settings)
    supervisor = Supervisor(
        registry, store, queue, concurrency, metrics, traced=traced, owns_store=True
    )
    _run(_work(supervisor, settings))


def _tracing(settings: Settings) -> bool:
    if not settings.jaeger_enabled:
        return False
    from arqd.observability.tracing import setup_tracing

    return setup_tracing(settings, "arqd-worker") is not None


def _metrics(settings: Settings) -> Metrics | None:
    if not settings.enable_prometheus:
        return None
    from arqd.observability.metrics import Metrics

    return Metrics()


async def _work(supervisor: Supervisor, settings: Settings) -> None:
    """Run ``supervisor`` (and the metrics server, when metrics are on) until a signal."""
    # What exists now (modules, the registry, settings) lives as long as the process: out
    # of the collector's view, full collections do not walk it and stall the tasks waiting
    # behind them (bench.core, enqueue-to-start latency p99).
    gc.freeze()
    metrics = supervisor.metrics
    if metrics is None:
        await supervisor.run(install_signals=True)
        return
    from arqd.observability.server import serve_metrics

    stop = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        group.create_task(
            serve_metrics(
                metrics, supervisor.store, settings.metrics_host, settings.metrics_port, stop
            )
        )
        await supervisor.run(install_signals=True)
        stop.set()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default ARQD_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default ARQD_PORT, 3000)")] = None,
    app_target: Annotated[
        str | None, typer.Option("--app", help="MODULE[:ATTR] with your task types")
    ] = None,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="API only, no worker")] = False,
) -> None:
    """Serve the HTTP API (with an in-process worker unless --no-worker)."""
    from arqd.api.server import serve as run_server

    settings = _settings()
    try:
        registry = load_registry(app_target) if app_target else None
    except ArqdError as exc:
        raise _fail(str(exc), 2) from None
    run_server(
        settings,
        host or settings.host,
        port if port is not None else settings.port,
        registry,
        with_worker=not no_worker,
    )


@app.command()
def enqueue(
    task_type: Annotated[str, typer.Argument(help="Task type name")],
    payload: Annotated[str, typer.Option(help="Payload as JSON")] = "null",
    queue: Annotated[str | None, typer.Option(help="Queue (default ARQD_QUEUE)")] = None,
    priority: Annotated[int, typer.Option(help="Higher runs first")] = 0,
    delay: Annotated[float | None, typer.Option(help="Seconds to wait before it may run")] = None,
    max_retries: Annotated[int | None, typer.Option(help="Retries after the first attempt")] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="A repeat returns the first task")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the task to finish")] = False,
    timeout: Annotated[float, typer.Option(help="With --wait: seconds to wait")] = 60.0,
) -> None:
    """Enqueue a task and print it as JSON (with --wait, once it has finished)."""
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise _fail(f"--payload is not valid JSON: {exc}", 2) from None
    settings = _settings()
    options = {
        "queue": queue,
        "priority": priority,
        "delay": delay,
        "max_retries": max_retries,
        "idempotency_key": idempotency_key,
    }
    main = _enqueue(settings, task_type, data, options, timeout if wait else None)
    try:
        result = _run(main)
    except ArqdError as exc:
        raise _fail(str(exc), 2) from None
    typer.echo(json.dumps(result, indent=2))
    if wait and result["status"] != "succeeded":
        raise typer.Exit(1)


async def _enqueue(
    settings: Settings,
    task_type: str,
    payload: Any,
    options: dict[str, Any],
    wait: float | None,
) -> dict[str, Any]:
    """Enqueue one task; with ``wait`` (seconds), the task once it has finished."""
    from arqd.client import Client

    async with Client.from_settings(settings) as client:
        task = await client.enqueue(task_type, payload, **options)
        if wait is not None:
            task = await client.wait(task.id, timeout=wait)
        return task.to_dict()


async def _inspect_tables(client: Client) -> Table:
    from rich.table import Table

    grid = Table.grid(padding=1)
    grid.add_row(_queues_table(await client.stats()))
    grid.add_row(_workers_table(await client.workers()))
    return grid


def _queues_table(stats: list[QueueStats]) -> Table:
    from rich.table import Table

    columns = ("queued", "scheduled", "active", "succeeded", "failed", "cancelled")
    held = "held: rate limit / concurrency / breaker"
    table = Table("queue", *columns, held, "oldest queued (s)", title="Queues")
    for s in stats:
        age = "-" if s.oldest_age is None else f"{s.oldest_age:.1f}"
        counts = (s.queued, s.scheduled, s.active, s.succeeded, s.failed, s.cancelled)
        by_reason = " / ".join(str(n) for n in s.held.values())
        table.add_row(s.queue, *(str(n) for n in counts), by_reason, age)
    return table


def _workers_table(workers: list[WorkerInfo]) -> Table:
    from rich.table import Table

    table = Table(
        "worker", "queues", "running", "processed", "last seen (s ago)", title="Live workers"
    )
    for w in workers:
        d = w.details
        table.add_row(
            w.id,
            ",".join(d.get("queues", [])),
            str(len(d.get("running", []))),
            str(d.get("processed", 0)),
            f"{time.time() - w.last_seen.timestamp():.1f}",
        )
    return table


@app.command()
def inspect(
    watch: Annotated[bool, typer.Option("--watch", help="Refresh until interrupted")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes")] = 1.0,
) -> None:
    """Show queues, their counts, and live workers."""
    settings = _settings()

    async def main() -> None:
        from arqd.client import Client

        async with Client.from_settings(settings) as client:
            from rich.live import Live

            console = _console()
            if not watch:
                console.print(await _inspect_tables(client))
                return
            with Live(await _inspect_tables(client), console=console) as live:
                while True:
                    await asyncio.sleep(interval)
                    live.update(await _inspect_tables(client))

    try:
        _run(main())
    except KeyboardInterrupt:
        pass
    except ArqdError as exc:
        raise _fail(str(exc)) from None


@app.command()
def bench(
    tasks: Annotated[int, typer.Option(help="Tasks per workload")] = 20_000,
    rate: Annotated[int, typer.Option(help="Tasks/s for the latency run")] = 500,
    seconds: Annotated[float, typer.Option(help="Length of the latency run")] = 10.0,
    concurrency: Annotated[int, typer.Option(help="The worker's concurrency")] = 200,
) -> None:
    """Measure arqd on this Redis (REDIS_URL, or the embedded server): enqueue, processing
    and latency, with progress bars and a summary table. Works under a key prefix of its own."""
    from arqd.benchmark import render, run_benchmark
    from arqd.store.connection import resolve_url

    settings = _settings()
    results = run_benchmark(resolve_url(settings), tasks, rate, seconds, concurrency)
    _console().print(render(results))


@embedded_app.command("status")
def embedded_status() -> None:
    """Say whether the embedded server for ARQD_DATA_DIR runs, and its URL."""
    from arqd.store.embedded import EmbeddedServer

    server = EmbeddedServer(_settings().data_dir)
    if server.is_running():
        typer.echo(f"running: {server.url}")
    else:
        typer.echo("not running")
        raise typer.Exit(1)


@embedded_app.command("stop")
def embedded_stop() -> None:
    """Stop the embedded server for ARQD_DATA_DIR (its data stays in the folder)."""
    from arqd.store.embedded import EmbeddedServer

    EmbeddedServer(_settings().data_dir).stop()
    typer.echo("stopped")


def main() -> None:
    app()
