"""Task types run by worker processes in tests/observability."""

from arqd.worker import Registry

registry = Registry()


@registry.task()
async def ok(payload: object) -> object:
    return payload


@registry.task(max_retries=0, breaker=False)
async def doomed(payload: object) -> None:
    raise RuntimeError("this task always fails")
