"""Schedules as producers and operators manage them (``Client.schedules``): create or
change one (idempotent), read, pause, resume, trigger and delete. The workers of a
schedule's queue run it (``arqd.worker.scheduling``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from arqd.core.errors import InvalidSchedule, ScheduleNotFound
from arqd.core.schedules import Schedule, ScheduleState, next_fire
from arqd.core.task import NewTask, Task

if TYPE_CHECKING:
    from arqd.client import Client


class ScheduleControl:
    """Schedules through one client (its store, its default queue)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.store = client.store.schedules

    async def upsert(self, schedule: Schedule) -> ScheduleState:
        """Create ``schedule``, or change the one of its name (its queue defaults to the
        client's). The same definition again changes nothing, so concurrent upserts leave
        one schedule with one next fire time."""
        schedule = schedule.on(self.client.settings.queue)
        await self.store.upsert(schedule, next_fire(schedule, _now()))
        return await self.get(schedule.name)

    async def update(self, name: str, **changes: Any) -> ScheduleState:
        """Change some fields of a schedule (as ``Schedule``'s; the name stays)."""
        if "name" in changes:
            raise InvalidSchedule("a schedule's name cannot change: create another")
        current = await self.get(name)
        return await self.upsert(Schedule.from_dict({**current.schedule.to_dict(), **changes}))

    async def get(self, name: str) -> ScheduleState:
        """The schedule ``name``; raises ScheduleNotFound."""
        state = await self.store.get(name)
        if state is None:
            raise ScheduleNotFound(name)
        return state

    async def list(self) -> list[ScheduleState]:
        """Every schedule, by name."""
        return await self.store.all()

    async def pause(self, name: str, reason: str = "") -> ScheduleState:
        """No tick fires until ``resume`` (ticks meanwhile are not run later)."""
        await self.store.pause(_queue(await self.get(name)), name, reason)
        return await self.get(name)

    async def resume(self, name: str) -> ScheduleState:
        """Fire again, from the first tick after now."""
        state = await self.get(name)
        await self.store.resume(_queue(state), name, next_fire(state.schedule, _now()))
        return await self.get(name)

    async def delete(self, name: str) -> None:
        """Delete the schedule (tasks it enqueued stay); raises ScheduleNotFound."""
        state = await self.get(name)
        await self.store.delete(_queue(state), name)

    async def trigger(self, name: str) -> Task:
        """Enqueue one run now, beside the ticks (its id ``s:<name>:now:<ms>``)."""
        schedule = (await self.get(name)).schedule
        task = NewTask(
            schedule.task_type,
            schedule.payload,
            queue=schedule.queue,
            priority=schedule.priority,
            id=f"s:{name}:now:{round(_now().timestamp() * 1000)}",
        )
        return await self.client.enqueue_task(task)


def _queue(state: ScheduleState) -> str:
    assert state.schedule.queue is not None
    return state.schedule.queue


def _now() -> datetime:
    return datetime.now(UTC)
