"""An idle worker's wait: a blocking pop on the wake-up keys, with the dequeue calls
written behind it on the same connection.

Redis runs a blocked client's next commands as soon as the pop returns, so the tasks that
woke the worker are leased in the same round trip, without a second one after the
wake-up. The wait is never cut short by dropping the connection, which would drop any
lease already taken with it: ``interrupt`` unblocks the pop from another connection
(``CLIENT UNBLOCK``), the dequeue calls still run, and their leases come back as usual.

On a Redis Cluster a pop over keys of several slots is refused, so a worker whose queues
live in several slots waits on each slot at once (``SpreadWait``), each pop with its own
queues' dequeue calls behind it on a connection to the slot's master.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisError, ResponseError

from arqd.store.nodes import Nodes
from arqd.store.packing import pack

log = logging.getLogger("arqd.worker")
Command = Sequence[str | bytes | int | float]
RETRY_UNBLOCK = 0.002  # seconds: an interrupt that came before the pop blocked is sent again


class WakeWait:
    """One connection kept for blocking waits: one wait at a time."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._connection: AbstractConnection | None = None
        self._client_id = 0
        self._blocked = False  # the pop was sent and has not answered yet
        self._interrupted = False  # interrupt() came for the wait in progress

    async def wait(self, pop: Command, then: Sequence[Command], fresh: bool = True) -> list[Any]:
        """Send the blocking ``pop`` and ``then`` together; the replies of ``then``, in
        order, a Redis error reply as its exception (not raised). Cancelled, the wait
        drops its connection, and with it the replies of ``then``: tasks they leased are
        reclaimed when their leases lapse. ``interrupt`` loses nothing, even one that
        came before this wait began when ``fresh`` is False."""
        if fresh:
            self._interrupted = False
        connection = await self._connect()
        if self._interrupted:  # before anything was sent: no need to block at all
            pop = ("PING",)
        try:
            packed = [pack(tuple(c)) for c in (pop, *then)]
            self._blocked = True
            await connection.send_packed_command(b"".join(packed), check_health=False)
            await connection.read_response()
            self._blocked = False
            replies: list[Any] = []
            for _ in then:
                try:
                    replies.append(await connection.read_response())
                except ResponseError as exc:
                    replies.append(exc)
            return replies
        except BaseException:
            self._blocked = False
            await self.close()  # replies may be left unread: this connection is done
            raise

    reserved = 0  # tasks a wait in flight may lease once this one returned: never any

    async def settle(self) -> None:
        """Nothing to wait for: ``wait`` returns only once every reply is read."""

    def reset(self) -> None:
        """Forget an interrupt that came before the next wait (see ``wait``'s ``fresh``)."""
        self._interrupted = False

    async def interrupt(self) -> None:
        """End the wait in progress early: ``wait`` returns as if the pop timed out."""
        self._interrupted = True
        while self._blocked:
            if await self.redis.client_unblock(self._client_id):
                return
            # Not blocked yet (Redis has not read the pop) or just answered: look again.
            await asyncio.sleep(RETRY_UNBLOCK)

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.disconnect()
            await self.redis.connection_pool.release(connection)

    async def _connect(self) -> AbstractConnection:
        if self._connection is None:
            pool = self.redis.connection_pool
            connection = await pool.get_connection()  # type: ignore[no-untyped-call]
            try:
                await connection.send_command("CLIENT", "ID")
                self._client_id = int(await connection.read_response())
            except BaseException:
                await pool.release(connection)
                raise
            self._connection = connection
        return self._connection


@dataclass(frozen=True, slots=True)
class SlotWait:
    """One slot's part of a spread wait: its blocking pop, the calls behind it, and how
    many tasks they may lease (held back from other dequeues while the part waits)."""

    slot: int
    pop: Command
    then: Sequence[Command]
    reserved: int = 0


Landed = Callable[[SlotWait, list[Any]], None]  # a part that answered after its wait returned


class SpreadWait:
    """Idle waits over several cluster slots: a ``WakeWait`` per slot, on its master, all
    sent at once. ``wait`` returns as soon as one slot answers, with what the calls behind
    its pop leased; the other slots' waits are interrupted (``CLIENT UNBLOCK``) and fly
    on, and what the calls behind their pops lease is handed to ``landed`` when it comes.
    Meanwhile ``reserved`` counts the tasks those calls may lease, so the worker leases
    no more than it has room for."""

    def __init__(self, nodes: Nodes) -> None:
        self.nodes = nodes
        self._waits: dict[int, WakeWait] = {}
        self._flying: dict[int, tuple[SlotWait, asyncio.Task[list[Any]]]] = {}
        self._ending: set[asyncio.Task[None]] = set()
        self._interrupted = False

    @property
    def reserved(self) -> int:
        """Tasks the interrupted waits still in flight may lease."""
        return sum(part.reserved for part, _ in self._flying.values())

    async def wait(self, parts: Sequence[SlotWait], landed: Landed) -> list[list[Any] | None]:
        """The replies of each part's ``then`` (see ``WakeWait.wait``), or None for a part
        still in flight (its replies go to ``landed``)."""
        self._interrupted = False
        if self._flying:  # interrupted already: each answers within a round trip
            await asyncio.wait([task for _, task in self._flying.values()])
        waits = [await self._for(part.slot) for part in parts]
        for wait in waits:
            wait.reset()
        if self._interrupted:  # while the slots' masters were looked up
            await self.interrupt()
        running = [
            asyncio.ensure_future(wait.wait(part.pop, part.then, fresh=False))
            for part, wait in zip(parts, waits, strict=True)
        ]
        try:
            await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            for task in running:
                task.cancel()
            raise
        out: list[list[Any] | None] = []
        for part, task in zip(parts, running, strict=True):
            out.append(task.result() if task.done() and not task.exception() else None)
            if not task.done():
                self._fly(part, task, landed)
        self._end_in_background([w for w, t in zip(waits, running, strict=True) if not t.done()])
        for task in running:
            if task.done() and (error := task.exception()) is not None:
                raise error
        return out

    def _fly(self, part: SlotWait, task: asyncio.Task[list[Any]], landed: Landed) -> None:
        self._flying[part.slot] = (part, task)

        def land(done: asyncio.Task[list[Any]]) -> None:
            if self._flying.get(part.slot, (part, None))[1] is done:
                del self._flying[part.slot]
            if not done.cancelled() and done.exception() is None:
                landed(part, done.result())

        task.add_done_callback(land)

    def _end_in_background(self, waits: list[WakeWait]) -> None:
        if not waits:
            return
        ending = asyncio.ensure_future(self._interrupt(waits))
        self._ending.add(ending)
        ending.add_done_callback(self._ending.discard)

    async def _interrupt(self, waits: Iterable[WakeWait]) -> None:
        try:
            await asyncio.gather(*(wait.interrupt() for wait in waits))
        except (RedisError, OSError) as exc:  # the wait fails on its own; its lease lapses
            log.debug("could not interrupt an idle wait: %s", exc)

    async def _for(self, slot: int) -> WakeWait:
        """The slot's wait, on its master now (a new one when the slot moved)."""
        node = await self.nodes.of_slot(slot)
        wait = self._waits.get(slot)
        if wait is not None and wait.redis is not node.redis:
            await wait.close()
            wait = None
        if wait is None:
            wait = self._waits[slot] = WakeWait(node.redis)
        return wait

    async def interrupt(self) -> None:
        """End the wait in progress early (each slot's, see ``WakeWait.interrupt``)."""
        self._interrupted = True
        await self._interrupt(self._waits.values())

    async def settle(self) -> None:
        """End every wait, and return once what they leased has been handed on."""
        await self.interrupt()
        if self._flying:
            await asyncio.wait([task for _, task in self._flying.values()])

    async def close(self) -> None:
        for _, task in list(self._flying.values()):
            task.cancel()
        waits, self._waits = list(self._waits.values()), {}
        for wait in waits:
            await wait.close()


IdleWait = WakeWait | SpreadWait  # what a worker keeps for its idle waits
