"""Task types run by worker subprocesses in test_progress_logs.py."""

import asyncio
import logging

from arqd.worker import Registry, TaskContext

registry = Registry()
log = logging.getLogger("report_tasks")


@registry.task()
async def log_then_sleep(payload: int, ctx: TaskContext) -> str:
    """Logs ``payload`` lines (half through ``logging``), reports progress, then sleeps
    long: the test kills the worker meanwhile."""
    for n in range(payload):
        if n % 2:
            log.warning("line %d", n)
        else:
            ctx.log(f"line {n}")
    ctx.progress(0.5, "halfway")
    await asyncio.sleep(600)
    return "never"
