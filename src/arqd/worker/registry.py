"""Declaring task types: a name, a handler, and how it is retried and timed out."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import TypeAdapter

from arqd.core.backoff import RetryPolicy
from arqd.core.errors import ConfigurationError
from arqd.core.schedules import Misfire, Schedule
from arqd.core.task import check_name
from arqd.resilience.breaker import BreakerPolicy
from arqd.resilience.ratelimit import Rate

Handler = Callable[..., Any]
F = TypeVar("F", bound=Handler)


@dataclass(frozen=True, slots=True)
class TaskType:
    """One declared task type. ``None`` options fall back to the settings' defaults."""

    name: str
    handler: Handler
    is_async: bool
    wants_context: bool
    payload_adapter: TypeAdapter[Any] | None
    max_retries: int | None = None
    timeout: float | None = None
    base_delay: float | None = None
    max_delay: float | None = None
    jitter: bool = True
    rate_limit: Rate | None = None
    concurrency: int | None = None
    breaker: BreakerPolicy | None = field(default_factory=BreakerPolicy)

    def policy(self, default_retries: int, default_base: float, default_max: float) -> RetryPolicy:
        return RetryPolicy(
            max_retries=default_retries if self.max_retries is None else self.max_retries,
            base_delay=default_base if self.base_delay is None else self.base_delay,
            max_delay=default_max if self.max_delay is None else self.max_delay,
            jitter=self.jitter,
        )


@dataclass
class Registry:
    """The task types a worker can run. Use ``@registry.task`` to declare one.

    A handler takes the payload as its first argument; if that argument is annotated
    (a pydantic model, a dataclass, ``dict[str, int]``...), the payload is validated
    against it and a payload that does not fit fails the task without retries. A handler
    that also takes a ``ctx`` keyword receives the ``TaskContext`` of the attempt.
    """

    types: dict[str, TaskType] = field(default_factory=dict)
    schedules: dict[str, Schedule] = field(default_factory=dict)

    def task(
        self,
        name: str | None = None,
        *,
        max_retries: int | None = None,
        timeout: float | None = None,
        base_delay: float | None = None,
        max_delay: float | None = None,
        jitter: bool = True,
        rate_limit: str | Rate | None = None,
        concurrency: int | None = None,
        breaker: BreakerPolicy | bool = True,
    ) -> Callable[[F], F]:
        """Declare a task type; ``timeout`` and delays are in seconds.

        ``rate_limit`` ("10/s", or a ``Rate`` with a burst) and ``concurrency`` hold across
        every worker of the queue: tasks over them wait in the queue. ``breaker`` is the
        type's circuit breaker (on by default; False turns it off).
        """

        def declare(fn: F) -> F:
            self.add(
                fn,
                name,
                max_retries=max_retries,
                timeout=timeout,
                base_delay=base_delay,
                max_delay=max_delay,
                jitter=jitter,
                rate_limit=rate_limit,
                concurrency=concurrency,
                breaker=breaker,
            )
            return fn

        return declare

    def add(self, fn: Handler, name: str | None = None, **options: Any) -> TaskType:
        """Declare ``fn`` as a task type (the decorator's plain-call form)."""
        task_name = check_name(name or fn.__name__)

        if task_name in self.types:
            raise ConfigurationError(f"task type {task_name!r} is declared twice")
        options = _resilience_options(task_name, options)
        declared = TaskType(
            name=task_name,
            handler=fn,
            is_async=inspect.iscoroutinefunction(fn),
            wants_context="ctx" in inspect.signature(fn).parameters,
            payload_adapter=_payload_adapter(fn),
            **options,
        )
        self.types[task_name] = declared
        return declared

    def cron(
        self,
        expression: str | None = None,
        *,
        every: float | None = None,
        name: str | None = None,
        tz: str = "UTC",
        queue: str | None = None,
        payload: Any = None,
        priority: int = 0,
        misfire: Misfire | str = Misfire.COALESCE,
        jitter: float = 0.0,
        overlap: bool = True,
        **task_options: Any,
    ) -> Callable[[F], F]:
        """Declare a task type run on the cron ``expression`` in the zone ``tz`` (or
        ``every`` so many seconds), with ``payload``; the schedule is named after the
        function unless ``name`` says. ``task_options`` are ``task``'s. Each worker
        stores its declared schedules when it starts (an unchanged one keeps its next
        fire time) and runs them with every other worker of the queue, each tick once."""

        def declare(fn: F) -> F:
            declared = self.add(fn, **task_options)
            schedule = Schedule(
                name or declared.name,
                declared.name,
                cron=expression,
                every=every,
                tz=tz,
                queue=queue,
                payload=payload,
                priority=priority,
                misfire=Misfire(misfire) if isinstance(misfire, str) else misfire,
                jitter=jitter,
                overlap=overlap,
            )
            self.schedule(schedule)
            return fn

        return declare

    def schedule(self, schedule: Schedule) -> Schedule:
        """Declare a schedule of a task type (declared here or on other workers)."""
        if schedule.name in self.schedules:
            raise ConfigurationError(f"schedule {schedule.name!r} is declared twice")
        self.schedules[schedule.name] = schedule
        return schedule

    def get(self, name: str) -> TaskType | None:
        return self.types.get(name)

    def __iter__(self) -> Iterator[TaskType]:
        return iter(self.types.values())

    def __len__(self) -> int:
        return len(self.types)


def _resilience_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    rate = options.get("rate_limit")
    if isinstance(rate, str):
        options["rate_limit"] = Rate.parse(rate)
    concurrency = options.get("concurrency")
    if concurrency is not None and concurrency < 1:
        raise ConfigurationError(f"task type {name!r}: concurrency must be at least 1")
    breaker = options.get("breaker", True)
    if breaker is True:
        options["breaker"] = BreakerPolicy()
    elif breaker is False:
        options["breaker"] = None
    return options


def _payload_adapter(fn: Handler) -> TypeAdapter[Any] | None:
    params = [p for p in inspect.signature(fn).parameters.values() if p.name != "ctx"]
    if not params:
        raise ConfigurationError(f"handler {fn.__name__} must take the payload as an argument")
    try:
        hints = inspect.get_annotations(fn, eval_str=True)
    except NameError as exc:
        raise ConfigurationError(
            f"handler {fn.__name__}: cannot resolve annotation: {exc}"
        ) from exc
    annotation = hints.get(params[0].name, inspect.Parameter.empty)
    if annotation in (inspect.Parameter.empty, Any, object):
        return None
    return TypeAdapter(annotation)
