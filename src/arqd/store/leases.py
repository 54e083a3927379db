"""Tasks as workers see them: leased in batches, renewed by heartbeat, answered."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import NoScriptError

from arqd.core.lease import Answer, Lease
from arqd.core.settings import Settings
from arqd.store import codec, scripts
from arqd.store.codec import Fetched, Renewal
from arqd.store.keys import Keys
from arqd.store.nodes import slot_of
from arqd.store.scripts import Scripts
from arqd.store.wakeup import IdleWait, SlotWait, SpreadWait, WakeWait

BLOCK_CAP = 2.0  # seconds; blocking reads stay well under the socket timeout
Late = Callable[[list[Fetched]], None]  # what a cluster's idle wait leased after it returned


@dataclass(frozen=True, slots=True)
class Limit:
    """A task type's limits, enforced by the dequeue script across all workers."""

    task_type: str
    interval_ms: float = 0.0  # between two starts; 0: no rate limit
    burst: int = 1
    concurrency: int = 0  # at most this many running; 0: no limit


@dataclass(frozen=True, slots=True)
class Finished:
    """The finish script's answer: per answer whether it was accepted; for the relay
    (``arqd.store.relay``), the members of workflows on other queues whose end wrote a
    notice, and the workflows (of this queue) whose next step went to their outbox."""

    accepted: list[bool]
    noticed: list[str]
    outboxes: list[str]


class Leases:
    """Dequeue, heartbeat and finish: each one script call on the queue's keys."""

    def __init__(self, scripts: Scripts, keys: Keys, settings: Settings) -> None:
        self.scripts = scripts
        self.keys = keys
        self.settings = settings
        self._member_ends: set[str] = set()  # queues whose next dequeue ends a member

    def _script(self, queue: str) -> str:
        """``dequeue``, or ``dequeue_members`` where the last one left a workflow member's
        end to it (see dequeue.lua)."""
        if queue in self._member_ends:
            self._member_ends.discard(queue)
            return "dequeue_members"
        return "dequeue"

    def _decode(self, queue: str, reply: Any) -> Fetched:
        fetched = codec.decode_fetched(queue, reply)
        if fetched.member_left:
            self._member_ends.add(queue)
        return fetched

    async def dequeue(
        self, queue: str, count: int, worker_id: str, limits: Sequence[Limit] = ()
    ) -> Fetched:
        """Lease up to ``count`` tasks of ``queue``."""
        args = self._dequeue_args(count, worker_id, limits)
        reply = await self.scripts.run(self._script(queue), [self.keys.queue(queue)], *args)
        return self._decode(queue, reply)

    def _dequeue_args(self, count: int, worker_id: str, limits: Sequence[Limit]) -> list[Any]:
        s = self.settings
        limit_args: list[Any] = []
        for limit in limits:
            limit_args += [limit.task_type, limit.interval_ms, limit.burst, limit.concurrency]
        return [
            count,
            s.lease_timeout,
            worker_id,
            s.events_max,
            s.queue_max_retries,
            s.failed_max,
            s.failed_ttl,
            s.result_ttl,
            s.finished_index_max,
            len(limits),
            *limit_args,
        ]

    def wake_wait(self) -> IdleWait:
        """A connection of its own for one worker's idle waits (``wait_and_dequeue``),
        from the store's pool (on a cluster, one per slot waited on); the worker closes
        it when it stops."""
        single = self.scripts.nodes.single
        if single is None:
            return SpreadWait(self.scripts.nodes)
        return WakeWait(single.redis)

    async def wait_and_dequeue(
        self,
        wait: IdleWait,
        queues: Sequence[str],
        timeout: float,
        counts: Sequence[int],
        worker_id: str,
        limits: Sequence[Limit] = (),
        late: Late | None = None,
    ) -> list[Fetched]:
        """Block until a wake token arrives on one of the queues or ``timeout`` seconds
        pass, then ``dequeue`` ``counts[i]`` tasks of ``queues[i]`` in the same round trip,
        on ``wait``'s connection (see ``wakeup``); ``wait.interrupt()`` ends it early. On a
        cluster it returns once one slot answers; what the others' dequeues lease goes to
        ``late`` when it comes (see ``wakeup.SpreadWait``)."""
        seconds = max(0.01, min(timeout, BLOCK_CAP))
        calls = [
            scripts.evalsha(
                self._script(q), [self.keys.queue(q)], self._dequeue_args(n, worker_id, limits)
            )
            for q, n in zip(queues, counts, strict=True)
        ]
        if isinstance(wait, WakeWait):
            pop: list[str | float] = ["BLPOP", *(self.keys.wake(q) for q in queues), seconds]
            replies = list(zip(queues, await wait.wait(pop, calls), strict=True))
        else:
            replies = await self._spread_wait(wait, queues, seconds, calls, counts, late)
        out = []
        for queue, reply in replies:
            if isinstance(reply, NoScriptError):
                out.append(
                    await self.dequeue(queue, counts[queues.index(queue)], worker_id, limits)
                )
            elif isinstance(reply, Exception):
                raise reply
            else:
                out.append(self._decode(queue, reply))
        return out

    async def _spread_wait(
        self,
        wait: SpreadWait,
        queues: Sequence[str],
        seconds: float,
        calls: list[list[Any]],
        counts: Sequence[int],
        late: Late | None,
    ) -> list[tuple[str, Any]]:
        """``wait_and_dequeue``'s wait on a cluster: a pop per slot, over its queues; the
        replies of the slots that answered first, by queue."""
        by_slot: dict[int, list[int]] = {}
        for i, queue in enumerate(queues):
            by_slot.setdefault(slot_of(self.keys.queue(queue)), []).append(i)
        parts = [
            SlotWait(
                slot,
                ["BLPOP", *(self.keys.wake(queues[i]) for i in at), seconds],
                [calls[i] for i in at],
                sum(counts[i] for i in at),
            )
            for slot, at in by_slot.items()
        ]
        slot_queues = {slot: [queues[i] for i in at] for slot, at in by_slot.items()}

        def landed(part: SlotWait, answered: list[Any]) -> None:
            # An error (NOSCRIPT, on a master that never ran the script) leased nothing:
            # its tasks stay queued for the worker's next dequeue.
            pairs = zip(slot_queues[part.slot], answered, strict=True)
            fetched = [self._decode(q, r) for q, r in pairs if not isinstance(r, Exception)]
            if late is not None:
                late(fetched)

        replies: list[tuple[str, Any]] = []
        for part, answered in zip(parts, await wait.wait(parts, landed), strict=True):
            if answered is not None:
                replies += zip(slot_queues[part.slot], answered, strict=True)
        return replies

    async def finish(self, queue: str, answers: Sequence[Answer]) -> list[bool]:
        """Record how attempts ended; False for each answer refused (a stale token)."""
        return (await self.finish_batch(queue, answers)).accepted

    async def finish_batch(self, queue: str, answers: Sequence[Answer]) -> Finished:
        """``finish``, also naming the members of other queues' workflows whose end wrote
        a notice (for the relay)."""
        s = self.settings
        members = codec.maybe_members(answers)
        reply = await self.scripts.run(
            "finish_members" if members else "finish",
            [self.keys.queue(queue)],
            s.events_max,
            s.finished_index_max,
            s.failed_max,
            s.result_ttl,
            s.failed_ttl,
            codec.pack_answers(answers),
            members,
        )
        answered = list(zip(answers, reply, strict=True))
        noticed = [a.lease.id for a, r in answered if r == 2]
        moved = {a.lease.id.rsplit(".", 2)[0] for a, r in answered if r == 3}  # member: W.K.I
        return Finished([r != 0 for r in reply], noticed, sorted(moved))

    async def heartbeat(self, queue: str, leases: Sequence[Lease]) -> Renewal:
        """Renew leases; say which were lost to another attempt or asked to cancel."""
        args: list[Any] = []
        for lease in leases:
            args += [lease.id, lease.token]
        keys = [self.keys.queue(queue)]
        return codec.decode_renewal(
            await self.scripts.run("heartbeat", keys, self.settings.lease_timeout, *args)
        )
