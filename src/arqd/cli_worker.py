"""The ``arqd worker`` process: task types loaded from MODULE[:ATTR], tracing and metrics as
the settings say, and the supervisor (with its companions) run until a signal."""

from __future__ import annotations

import asyncio
import gc
import importlib
import sys
from typing import TYPE_CHECKING

from arqd.core.errors import ConfigurationError
from arqd.core.settings import Settings
from arqd.worker.registry import Registry

if TYPE_CHECKING:
    from arqd.observability.metrics import Metrics
    from arqd.worker.supervision import EmbeddedWatch, Supervisor


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


def tracing(settings: Settings) -> bool:
    if not settings.jaeger_enabled:
        return False
    from arqd.observability.tracing import setup_tracing

    return setup_tracing(settings, "arqd-worker") is not None


def metrics(settings: Settings) -> Metrics | None:
    if not settings.enable_prometheus:
        return None
    from arqd.observability.metrics import Metrics

    return Metrics()


async def work(supervisor: Supervisor, settings: Settings, watch: EmbeddedWatch | None) -> None:
    """Run ``supervisor`` until a signal, with the metrics server when metrics are on, and
    a watch on the embedded server when it is the one in use."""
    # What exists now (modules, the registry, settings) lives as long as the process: out
    # of the collector's view, full collections do not walk it and stall the tasks waiting
    # behind them (bench.core, enqueue-to-start latency p99).
    gc.freeze()
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        if supervisor.metrics is not None:
            from arqd.observability.server import serve_metrics

            host, port = settings.metrics_host, settings.metrics_port
            group.create_task(serve_metrics(supervisor.metrics, supervisor.store, host, port, stop))
        if watch is not None:
            group.create_task(watch.run(stop))
        await supervisor.run(install_signals=True)
        stop.set()
