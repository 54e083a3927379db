"""Task types run by worker subprocesses in test_workflow_crash.py and test_sync_client.py."""

import asyncio

from arqd.core.errors import NonRetryable
from arqd.worker import Registry, TaskContext

registry = Registry()
failed_once: set[str] = set()  # ids of the flaky tasks whose first attempt failed


@registry.task()
async def square(x: int) -> int:
    await asyncio.sleep(1.5)
    return x * x


@registry.task()
async def collect(results: list[int]) -> list[int]:
    return results


@registry.task()
async def flaky(x: int, ctx: TaskContext) -> int:
    """Fail for good the first time a task runs; return ``x`` once it is retried."""
    if ctx.task_id not in failed_once:
        failed_once.add(ctx.task_id)
        raise NonRetryable(f"first run of {ctx.task_id}")
    return x
