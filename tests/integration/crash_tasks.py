"""Task types run by worker subprocesses in test_crash.py."""

import asyncio

from arqd.worker import Registry, TaskContext

registry = Registry()


@registry.task()
async def slow_first_time(payload: float, ctx: TaskContext) -> str:
    if ctx.attempt == 1:
        await asyncio.sleep(payload)
    return f"done on attempt {ctx.attempt}"


@registry.task()
async def nap(payload: float) -> str:
    await asyncio.sleep(payload)
    return "rested"
