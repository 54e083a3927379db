"""A one-second schedule, run by worker subprocesses in test_schedule_crash.py."""

from arqd.worker import Registry

registry = Registry()


@registry.cron(every=1, name="tick")
async def tick(payload: None) -> str:
    return "ticked"
