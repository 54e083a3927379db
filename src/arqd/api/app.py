"""The FastAPI app: routes, the event WebSocket, API keys, body limit and problem errors."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib.metadata import version
from typing import Any

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.routing import BaseRoute

from arqd.api import events, openapi, problems, system_events
from arqd.api.auth import DEFAULT_PUBLIC_PATHS, ApiKeyMiddleware, ApiKeys
from arqd.api.auth_failures import AuthFailureLimit
from arqd.api.fastlane import EnqueueFastLane, enqueue_routes
from arqd.api.http_metrics import HttpMetrics
from arqd.api.limits import BodyLimitMiddleware
from arqd.api.ratelimit import RateLimitMiddleware, RateLimitPolicy
from arqd.api.routes import breakers, metrics, queues, schedules, system, tasks, workflows
from arqd.api.shedding import LoadShedding
from arqd.api.state import ApiState
from arqd.client import FEEDS, REQUESTS, Client, resolve_url
from arqd.core.settings import Settings
from arqd.observability.metrics import Metrics
from arqd.worker import Registry
from arqd.worker.supervision import Supervisor

log = logging.getLogger("arqd.api")

DESCRIPTION = """\
Enqueue tasks, follow them, and watch their events live (WebSocket `/events`).
Every route but `/health` needs an API key (`Authorization: Bearer KEY` or `X-API-Key: KEY`)
when `API_KEYS` is set. Errors are `application/problem+json` (RFC 9457). Requests are
rate limited per key (`429` with `Retry-After` and `RateLimit-*` headers) and shed under
overload (`503` with `Retry-After`); probes and metrics are exempt from both.
"""


# FastAPI's own OpenTelemetry hooks look the providers up on every request; arqd's
# observability layer does the tracing and metrics it wants itself.
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
TAGS = [
    {"name": "tasks", "description": "Enqueue and follow tasks"},
    {"name": "system", "description": "Health, queues and workers"},
    {"name": "breakers", "description": "Circuit breakers: their state, and reset"},
    {"name": "queues", "description": "Queue control: pause and resume a queue or a task type"},
    {"name": "workflows", "description": "Chains and groups of tasks, and their state"},
]
APP_OPTIONS: dict[str, Any] = {
    "telemetry": NO_TELEMETRY,
    "docs_url": None,  # openapi.install serves /docs from the wheel, not a CDN
    "redoc_url": None,
    "openapi_tags": TAGS,
}
ROUTERS = (
    tasks.router,
    system.router,
    breakers.router,
    schedules.router,
    workflows.router,
    queues.router,
    events.router,
    system_events.router,
    metrics.router,
)


def create_app(
    settings: Settings,
    client: Client | None = None,
    registry: Registry | None = None,
    with_worker: bool = False,
    *,
    public_paths: frozenset[str] = DEFAULT_PUBLIC_PATHS,
    event_buffer: int = 1000,
    traced: bool = False,
    fast_lane: bool = True,
) -> FastAPI:
    """The API app. Without ``client`` it connects (and disconnects) as ``settings`` say;
    ``with_worker`` also runs a worker for ``registry`` (None: the demo task types) in the
    app's event loop. ``event_buffer`` is how far a WebSocket client may fall behind.
    ``fast_lane=False`` answers enqueues through FastAPI alone (see ``fastlane``)."""
    state = ApiState(settings, event_buffer)
    state.metrics = Metrics() if settings.enable_prometheus else None
    keys = ApiKeys(settings.api_key_list(), settings.read_only_key_list())
    if settings.metrics_public:
        public_paths |= {"/metrics", "/metrics.json"}
    start_worker = (
        functools.partial(_start_worker, registry, settings, metrics=state.metrics, traced=traced)
        if with_worker
        else None
    )
    app = FastAPI(
        title="arqd",
        version=version("arqd"),
        description=DESCRIPTION,
        lifespan=_lifespan(state, client, keys, start_worker),
        **APP_OPTIONS,
    )
    app.state.arqd = state
    for router in ROUTERS:
        app.include_router(router)
    problems.install(app)
    problems.quiet_refused_websockets()
    openapi.install(app, public_paths)
    _add_middleware(app, state, keys, public_paths, fast_lane)
    return app


def _lifespan(
    state: ApiState,
    client: Client | None,
    keys: ApiKeys,
    start_worker: Callable[[str], Supervisor] | None,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Connect when the app starts (and start the worker), disconnect when it stops."""
    settings = state.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = settings.redis_url or await asyncio.to_thread(resolve_url, settings)
        assert url is not None
        own = client or Client.connect(url, settings, REQUESTS)
        state.attach(own, Client.connect(url, settings, FEEDS))
        if keys.open:
            _warn_open(settings)
        worker = start_worker(url) if start_worker else None
        try:
            yield
        finally:
            if worker is not None:
                await worker.shutdown()
            await state.feeds.close()
            if client is None:
                await own.close()

    return lifespan


def _add_middleware(
    app: FastAPI, state: ApiState, keys: ApiKeys, public_paths: frozenset[str], fast_lane: bool
) -> None:
    """The last added runs first. Outside in: every request counted (refusals too), load
    shed before any work, the key checked (wrong keys bounded per address), then the key's
    rate limit, all before the body is even read."""
    settings = state.settings
    if fast_lane:
        app.add_middleware(EnqueueFastLane, state=state, routes=enqueue_routes(tasks.router.routes))
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    policy = RateLimitPolicy.from_settings(settings)
    if policy.active:
        app.add_middleware(RateLimitMiddleware, state=state, policy=policy)
    failures = (
        AuthFailureLimit(state, settings.auth_failures_per_minute)
        if settings.auth_failures_per_minute and not keys.open
        else None
    )
    from arqd.ui import UiGate, create_ui  # here: arqd.ui imports parts of arqd.api

    app.add_middleware(
        ApiKeyMiddleware,
        keys=keys,
        public_paths=public_paths,
        failures=failures,
        metrics=state.metrics,
        bypass=UiGate(create_ui(state)),  # the dashboard signs its viewers in itself
    )
    if settings.max_inflight:
        app.add_middleware(LoadShedding, state=state, cap=settings.max_inflight)
    if state.metrics is not None:
        app.add_middleware(HttpMetrics, metrics=state.metrics, routes=served_routes(app))


def served_routes(app: FastAPI) -> list[BaseRoute]:
    """The app's routes, flat: its own, and those of the routers it includes (without a
    prefix), which FastAPI keeps behind an inclusion object of its own."""
    return [*app.router.routes, *(route for router in ROUTERS for route in router.routes)]


def _start_worker(
    registry: Registry | None,
    settings: Settings,
    url: str,
    *,
    metrics: Metrics | None,
    traced: bool,
) -> Supervisor:
    if registry is None:
        from arqd.demo import registry as demo_registry

        registry = demo_registry
    worker = Supervisor.connected(registry, settings, url, metrics, traced)
    worker.start()
    return worker


def _warn_open(settings: Settings) -> None:
    rule = "!" * 78
    log.warning(
        "\n%s\n!! API_KEYS is not set: the API is OPEN. Anyone who can reach %s:%d can\n"
        "!! enqueue, read and cancel tasks. Set API_KEYS=key1,key2 before exposing it.\n%s",
        rule,
        settings.host,
        settings.port,
        rule,
    )
