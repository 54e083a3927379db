"""Task types run by worker subprocesses in test_workflow_crash.py."""

import asyncio

from arqd.worker import Registry

registry = Registry()


@registry.task()
async def square(x: int) -> int:
    await asyncio.sleep(1.5)
    return x * x


@registry.task()
async def collect(results: list[int]) -> list[int]:
    return results
