"""Task types for retrying a workflow's member from outside: ``flaky`` fails for good the
first time a task runs and succeeds once it is retried (the demo's ``fail`` cannot: a
retry counts attempts from 1 again); ``echo`` returns its payload."""

from __future__ import annotations

from arqd.core.errors import NonRetryable
from arqd.worker import Registry, TaskContext


def flaky_registry() -> Registry:
    """``echo`` and ``flaky``, with a memory of their own of which tasks failed once."""
    registry = Registry()
    failed_once: set[str] = set()

    @registry.task()
    async def echo(payload: object) -> object:
        return payload

    @registry.task()
    async def flaky(payload: object, ctx: TaskContext) -> object:
        if ctx.task_id not in failed_once:
            failed_once.add(ctx.task_id)
            raise NonRetryable(f"first run of {ctx.task_id}")
        return payload

    return registry
