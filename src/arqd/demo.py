"""Task types ``arqd serve`` runs when given no ``--app``: enough to try the whole loop.

- ``echo`` returns its payload.
- ``sleep`` waits ``{"seconds": x}`` (default 1), then returns ``{"slept": x}``.
- ``fail`` raises a retryable error; with ``{"times": n}`` only the first n attempts fail,
  so a later attempt succeeds (if the task's retries allow one).
- ``steps`` takes ``{"steps": n, "seconds": x}`` (default 5 steps of 0.5 s), reporting its
  progress and logging a line at each step (see the README's "Progress and logs").
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, Field

from arqd.worker import Registry, TaskContext

registry = Registry()


class DemoFailure(Exception):
    """What ``fail`` raises: an ordinary exception, so the task is retried."""


class SleepPayload(BaseModel):
    seconds: float = Field(default=1.0, ge=0, le=3600)


class StepsPayload(BaseModel):
    steps: int = Field(default=5, ge=1, le=10_000)
    seconds: float = Field(default=0.5, ge=0, le=3600)


class FailPayload(BaseModel):
    times: int | None = Field(default=None, ge=0)


@registry.task()
async def echo(payload: Any) -> Any:
    """Return the payload unchanged."""
    return payload


@registry.task()
async def sleep(payload: SleepPayload | None) -> dict[str, float]:
    """Sleep for ``seconds``, then say so."""
    seconds = (payload or SleepPayload()).seconds
    await asyncio.sleep(seconds)
    return {"slept": seconds}


@registry.task()
async def fail(payload: FailPayload | None, ctx: TaskContext) -> dict[str, int]:
    """Fail the first ``times`` attempts (every attempt without ``times``)."""
    times = (payload or FailPayload()).times
    if times is None or ctx.attempt <= times:
        raise DemoFailure(f"demo failure on attempt {ctx.attempt}")
    return {"succeeded_on_attempt": ctx.attempt}


@registry.task()
async def steps(payload: StepsPayload | None, ctx: TaskContext) -> dict[str, int]:
    """Work through ``steps`` steps of ``seconds`` each, saying how far it got."""
    plan = payload or StepsPayload()
    ctx.log(f"starting {plan.steps} steps")
    for step in range(1, plan.steps + 1):
        await asyncio.sleep(plan.seconds)
        ctx.progress(step / plan.steps, f"step {step} of {plan.steps}")
        ctx.log(f"step {step} done")
    return {"steps": plan.steps}
