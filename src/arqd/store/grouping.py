"""Single enqueues made while another is on its way to Redis, sent as one script call.

A producer with many concurrent callers (a web app, the HTTP API) makes one enqueue call a
task, and each script call costs Redis as much again as the task it writes (per call:
about 104k instructions alone, 39k a task in a batch; ``bench.scriptcost``). A caller with
nothing else on its way to Redis is sent at once. One that comes while another is on its
way joins a group that is sent once nothing is on its way any more (at the end of that
turn of the event loop), one script call per queue; each caller still gets its own
answer. With one call in flight at a time, the groups grow with the load: over HTTP at 32
connections, a third of the script calls of sending each group at the end of the turn it
formed in (bench.bench_api). A caller's own enqueues keep their order: it makes
the next only once the last has been answered. A caller cancelled before its group is sent
is left out of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from arqd.store import codec
from arqd.store.codec import ArgList, Enqueued

# (queue, tasks in the call, their enqueue_args one after another) -> the script's reply
Send = Callable[[str, int, ArgList], Awaitable[Sequence[Any]]]


@dataclass(slots=True)
class _Member:
    task_id: str
    args: ArgList
    answer: asyncio.Future[Enqueued]


class EnqueueGroups:
    """Sends single enqueues alone, or grouped while others are on their way."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._on_the_way = 0  # script calls sent and not yet answered
        self._groups: dict[str, list[_Member]] = {}  # by queue; sent when the turn ends
        self._sending: set[asyncio.Task[None]] = set()

    async def enqueue(self, queue: str, task_id: str, args: ArgList) -> Enqueued:
        if not self._on_the_way and not self._groups:
            self._on_the_way += 1
            try:
                reply = await self._send(queue, 1, args)
            finally:
                self._sent()
            return codec.decode_enqueued(reply, [task_id])[0]
        loop = asyncio.get_running_loop()
        if not self._groups and not self._on_the_way:
            loop.call_soon(self._flush)
        member = _Member(task_id, args, loop.create_future())
        self._groups.setdefault(queue, []).append(member)
        return await member.answer

    def _sent(self) -> None:
        """A script call was answered (or failed): once none is on its way, the group
        formed meanwhile goes, when this turn of the loop ends."""
        self._on_the_way -= 1
        if not self._on_the_way and self._groups:
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        groups, self._groups = self._groups, {}
        for queue, members in groups.items():
            waiting = [m for m in members if not m.answer.done()]  # done: cancelled
            if waiting:
                sending = asyncio.ensure_future(self._send_group(queue, waiting))
                self._sending.add(sending)
                sending.add_done_callback(self._sending.discard)

    async def _send_group(self, queue: str, members: list[_Member]) -> None:
        self._on_the_way += 1
        try:
            args = [arg for member in members for arg in member.args]
            reply = await self._send(queue, len(members), args)
        except asyncio.CancelledError:
            for member in members:
                member.answer.cancel()
            raise
        except Exception as exc:
            for member in members:
                if not member.answer.done():
                    member.answer.set_exception(exc)
            return
        finally:
            self._sent()
        outcomes = codec.decode_enqueued(reply, [member.task_id for member in members])
        for member, outcome in zip(members, outcomes, strict=True):
            if not member.answer.done():
                member.answer.set_result(outcome)
