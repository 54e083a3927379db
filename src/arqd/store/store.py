"""Typed wrappers over the Lua scripts, and the reads the client needs."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from arqd.core.settings import Settings
from arqd.core.task import Task
from arqd.store import codec, scripts
from arqd.store.codec import Answer, ArgList, Lease, NewTask, text
from arqd.store.grouping import EnqueueGroups
from arqd.store.keys import Keys
from arqd.store.multiplex import Multiplexer
from arqd.store.wakeup import WakeWait

__all__ = ["Answer", "Limit", "QueueStats", "Store"]

BLOCK_CAP = 2.0  # seconds; blocking reads stay well under the socket timeout


@dataclass(frozen=True, slots=True)
class Limit:
    """A task type's limits, enforced by the dequeue script across all workers."""

    task_type: str
    interval_ms: float = 0.0  # between two starts; 0: no rate limit
    burst: int = 1
    concurrency: int = 0  # at most this many running; 0: no limit


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Counts per status; ``oldest_age`` is the age in seconds of the oldest ready task."""

    queue: str
    queued: int
    scheduled: int
    active: int
    succeeded: int
    failed: int
    cancelled: int
    oldest_age: float | None


class Store:
    """The only place that talks to Redis about tasks; every state change is a script."""

    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.multiplexer = Multiplexer(redis)
        self._singles = EnqueueGroups(self._enqueue_call)
        self._sha = {
            name: hashlib.sha1(scripts.source(name).encode()).hexdigest() for name in scripts.NAMES
        }

    async def close(self) -> None:
        """Close the shared connection and the client's pool."""
        await self.multiplexer.close()
        await self.redis.aclose()

    async def _load_scripts(self) -> None:
        for name in scripts.NAMES:
            await self.redis.script_load(scripts.source(name))

    def _evalsha(self, name: str, keys: Sequence[str], *args: Any) -> list[Any]:
        """The command that runs the script ``name``."""
        return ["EVALSHA", self._sha[name], len(keys), *keys, *args]

    async def _eval(self, name: str, keys: Sequence[str], *args: Any) -> Any:
        command = self._evalsha(name, keys, *args)
        try:
            return await self._send(*command)
        except NoScriptError:
            await self._load_scripts()
            return await self._send(*command)

    async def _send(self, *args: Any) -> Any:
        """A hot command on the shared connection (see ``multiplex``). If that connection
        broke, redis-py's own path reconnects and resends as the pool's retry policy says.
        Nothing is lost if the first copy had run: ``enqueue`` finds its task, an answer
        sent twice is refused by its fencing token, and tasks a lost dequeue leased are
        reclaimed when their lease lapses."""
        try:
            return await self.multiplexer.call(*args)
        except RedisConnectionError:
            return await self.redis.execute_command(*args)  # type: ignore[no-untyped-call]

    async def _call(self, name: str, queue: str, *args: Any) -> Any:
        """Run a script on one queue's keys."""
        return await self._eval(name, [self.keys.queue(queue)], *args)

    # Producers.

    async def enqueue(self, tasks: Sequence[NewTask]) -> list[tuple[str, bool]]:
        """Enqueue tasks, one script call per queue (concurrent); (id, created) each."""
        if len(tasks) == 1:
            return [await self.enqueue_one(tasks[0])]
        s = self.settings
        calls = codec.plan_enqueue(tasks, s.queue, s.max_payload_bytes, s.idempotency_ttl)
        if len(calls) == 1:  # sent before this first awaits (see Client.enqueue_many)
            replies = [await self._enqueue_call(calls[0].queue, len(tasks), calls[0].args)]
        else:
            replies = await asyncio.gather(
                *(self._enqueue_call(c.queue, len(c.positions), c.args) for c in calls)
            )
        return codec.enqueue_outcomes(calls, replies, len(tasks))

    async def enqueue_one(self, task: NewTask) -> tuple[str, bool]:
        """``enqueue`` of one task, the one-call-at-a-time path: sent at once, or with the
        others made while an earlier one is on its way to Redis (see ``grouping``)."""
        s = self.settings
        args = codec.enqueue_args(task, s.max_payload_bytes, s.idempotency_ttl)
        return await self._singles.enqueue(task.queue or s.queue, task.id, args)

    async def _enqueue_call(self, queue: str, count: int, args: ArgList) -> list[Any]:
        """One enqueue script call of ``count`` tasks on ``queue``; a queue new to the set
        of queue names (the script says so) is added to it."""
        prefix = self.keys.queue(queue)
        reply: list[Any] = await self._eval(
            "enqueue", [prefix], self.settings.events_max, count, *args
        )
        if reply[0] == 1:
            await self.redis.sadd(self.keys.queues(), queue)
        return reply

    async def cancel(self, queue: str, task_id: str) -> str:
        s = self.settings
        reply = await self._call(
            "cancel", queue, task_id, s.events_max, s.finished_index_max, s.result_ttl
        )
        return str(reply.decode())

    async def retry(self, queue: str, task_id: str) -> Task | str:
        """Queue a failed or cancelled task again: the task as it was once queued (a worker
        may take it at once), or why not: ``missing`` or the status it is in."""
        reply = await self._call("retry", queue, task_id, self.settings.events_max)
        if isinstance(reply, bytes):
            return reply.decode()
        return codec.decode_task(queue, task_id, dict(zip(reply[::2], reply[1::2], strict=True)))

    # Workers.

    async def dequeue(
        self, queue: str, count: int, worker_id: str, limits: Sequence[Limit] = ()
    ) -> tuple[int, int, list[Lease]]:
        """Lease up to ``count`` tasks: (ms until the next timed event or -1, tasks a limit
        deferred, leases)."""
        reply = await self._call("dequeue", queue, *self._dequeue_args(count, worker_id, limits))
        return codec.parse_leases(queue, reply)

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
            len(limits),
            *limit_args,
        ]

    def wake_wait(self) -> WakeWait:
        """A connection of its own for one worker's idle waits (``wait_and_dequeue``),
        from the store's pool; the worker closes it when it stops."""
        return WakeWait(self.redis)

    async def wait_and_dequeue(
        self,
        wait: WakeWait,
        queues: Sequence[str],
        timeout: float,
        counts: Sequence[int],
        worker_id: str,
        limits: Sequence[Limit] = (),
    ) -> list[tuple[int, int, list[Lease]]]:
        """Block until a wake token arrives on one of the queues or ``timeout`` seconds
        pass, then ``dequeue`` ``counts[i]`` tasks of ``queues[i]`` in the same round trip,
        on ``wait``'s connection (see ``wakeup``); ``wait.interrupt()`` ends it early."""
        wake = [self.keys.wake(q) for q in queues]
        pop: list[str | float] = ["BLPOP", *wake, max(0.01, min(timeout, BLOCK_CAP))]
        calls = []
        for queue, count in zip(queues, counts, strict=True):
            args = self._dequeue_args(count, worker_id, limits)
            calls.append(self._evalsha("dequeue", [self.keys.queue(queue)], *args))
        replies = await wait.wait(pop, calls)
        out = []
        for queue, count, reply in zip(queues, counts, replies, strict=True):
            if isinstance(reply, NoScriptError):
                out.append(await self.dequeue(queue, count, worker_id, limits))  # loads it
            elif isinstance(reply, Exception):
                raise reply
            else:
                out.append(codec.parse_leases(queue, reply))
        return out

    async def finish(self, queue: str, answers: Sequence[Answer]) -> list[bool]:
        """Record how attempts ended; False for each answer refused (a stale token)."""
        s = self.settings
        reply = await self._call(
            "finish",
            queue,
            s.events_max,
            s.finished_index_max,
            s.failed_max,
            s.result_ttl,
            s.failed_ttl,
            codec.pack_answers(answers),
        )
        return [r == 1 for r in reply]

    async def heartbeat(self, queue: str, leases: Sequence[Lease]) -> tuple[set[str], set[str]]:
        """Renew leases; returns (ids lost to another attempt, ids asked to cancel)."""
        args: list[Any] = []
        for lease in leases:
            args += [lease.id, lease.token]
        lost, cancel = await self._call("heartbeat", queue, self.settings.lease_timeout, *args)
        return {i.decode() for i in lost}, {i.decode() for i in cancel}

    # Reads.

    async def run_span(self, queue: str, ids: Sequence[str]) -> tuple[int, int] | None:
        """The first start and the last finish (ms, Redis clock) among these tasks of
        ``queue``, by their own timestamps; None if none has finished."""
        first, last = None, None
        for i in range(0, len(ids), 5000):
            pipe = self.redis.pipeline(transaction=False)
            for task_id in ids[i : i + 5000]:
                pipe.hmget(self.keys.task(queue, task_id), "stime", "ftime")
            for stime, ftime in await pipe.execute():
                if stime and ftime:
                    first = min(first or int(stime), int(stime))
                    last = max(last or 0, int(ftime))
        return None if first is None or last is None else (first, last)

    async def stats(self, queue: str) -> QueueStats:
        q, sch, act, ok, failed, cxl, oldest = await self._call("stats", queue)
        return QueueStats(
            queue, q, sch, act, ok, failed, cxl, None if oldest < 0 else oldest / 1000
        )

    async def queues(self) -> list[str]:
        names = await self.redis.smembers(self.keys.queues())
        return sorted(text(n) for n in names)

    async def get(self, task_id: str, queue: str | None = None) -> Task | None:
        """The task, looked up in ``queue`` or, when None, in every known queue."""
        candidates = [queue] if queue else await self.queues()
        pipe = self.redis.pipeline(transaction=False)
        for q in candidates:
            pipe.hgetall(self.keys.task(q, task_id))
        for q, h in zip(candidates, await pipe.execute(), strict=True):
            if h:
                return codec.decode_task(q, task_id, h)
        return None

    async def last_event_id(self, queue: str) -> bytes:
        """The id of the newest event of ``queue`` (``0-0`` when there is none)."""
        newest = await self.redis.xrevrange(self.keys.events(queue), count=1)
        return text(newest[0][0]).encode() if newest else b"0-0"

    async def read_events(
        self, queue: str, after: bytes, block_ms: int, count: int = 100
    ) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """Events of ``queue`` after id ``after``, waiting up to ``block_ms`` for the first."""
        block_ms = min(block_ms, int(BLOCK_CAP * 1000))
        reply: Any = await self.redis.xread(
            {self.keys.events(queue): after}, block=block_ms, count=count
        )
        return [(bytes(eid), dict(fields)) for _, entries in reply or [] for eid, fields in entries]

    async def get_many(self, queue: str, task_ids: Sequence[str]) -> list[Task | None]:
        pipe = self.redis.pipeline(transaction=False)
        for task_id in task_ids:
            pipe.hgetall(self.keys.task(queue, task_id))
        hashes = await pipe.execute()
        return [
            codec.decode_task(queue, i, h) if h else None
            for i, h in zip(task_ids, hashes, strict=True)
        ]

    # Breakers and rate limits.

    async def breaker(
        self, name: str, op: str, threshold: int = 0, open_ms: int = 0
    ) -> tuple[bool, int, int]:
        """A named breaker: op allow | ok | fail | neutral | reset.
        Returns (allowed, retry after ms, state 0/1/2)."""
        k = self.keys
        keys = [k.breaker(name), k.breakers(), k.breaker_events()]
        allowed, retry, state = await self._eval(
            "breaker", keys, op, threshold, open_ms, self.settings.events_max, name
        )
        return allowed == 1, int(retry), int(state)

    async def named_breakers(self) -> list[tuple[str, dict[bytes, bytes]]]:
        """Every named breaker and its stored fields."""
        names = sorted(text(n) for n in await self.redis.smembers(self.keys.breakers()))
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(self.keys.breaker(name))
        return list(zip(names, await pipe.execute(), strict=True))

    async def type_breakers(self, queue: str) -> list[tuple[str, dict[bytes, bytes]]]:
        """The breakers of ``queue``'s task types that have recorded a failure."""
        types = sorted(text(t) for t in await self.redis.smembers(self.keys.index(queue, "cbs")))
        pipe = self.redis.pipeline(transaction=False)
        for task_type in types:
            pipe.hgetall(self.keys.index(queue, f"cb:{task_type}"))
        return list(zip(types, await pipe.execute(), strict=True))

    async def all_breakers(self) -> list[tuple[str, dict[bytes, bytes]]]:
        """Task types' breakers (named ``task:QUEUE:TYPE``) and named ones, with fields."""
        found = []
        for queue in await self.queues():
            found += [(f"task:{queue}:{t}", f) for t, f in await self.type_breakers(queue)]
        return found + await self.named_breakers()

    async def reset_type_breaker(self, queue: str, task_type: str) -> int:
        """Close a task type's breaker and release what it held; returns its old state."""
        return int(await self._call("reset_breaker", queue, task_type, self.settings.events_max))

    async def take_token(
        self, scope: str, subject: str, interval_ms: float, burst: int
    ) -> tuple[bool, int, int, int]:
        """One token of a GCRA limit: (allowed, retry after ms, remaining, reset ms)."""
        (verdict,) = await self.take_tokens(scope, [(subject, interval_ms, burst)])
        return verdict

    async def take_tokens(
        self, scope: str, wanted: Sequence[tuple[str, float, int]]
    ) -> list[tuple[bool, int, int, int]]:
        """``take_token`` for each (subject, interval ms, burst), in order, in one script
        call (the keys of a scope share a hash tag)."""
        keys = [self.keys.rate_limit(scope, subject) for subject, _, _ in wanted]
        args = [value for _, interval, burst in wanted for value in (interval, burst)]
        flat = await self._eval("ratelimit", keys, *args)
        return [
            (flat[i] == 1, int(flat[i + 1]), int(flat[i + 2]), int(flat[i + 3]))
            for i in range(0, len(flat), 4)
        ]

    async def note_rate_limited(self, fields: dict[str, str | int]) -> None:
        """Append a refusal by the HTTP rate limit to its capped event stream (on the shared
        connection: a flood of refusals must cost less than the requests it turns away)."""
        cap = self.settings.events_max
        flat = [item for pair in fields.items() for item in pair]
        await self._send("XADD", self.keys.rate_limit_events(), "MAXLEN", "~", cap, "*", *flat)

    # The worker registry (not task state: plain commands).

    async def register_worker(self, worker_id: str, details: dict[str, Any]) -> None:
        """Record that a worker is alive; it drops out after three missed heartbeats."""
        ttl = 3 * self.settings.lease_timeout
        now = time.time()
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self.keys.worker(worker_id), orjson.dumps({**details, "last_seen": now}), px=ttl)
        pipe.zadd(self.keys.workers(), {worker_id: now * 1000})
        pipe.zremrangebyscore(self.keys.workers(), "-inf", now * 1000 - ttl)
        await pipe.execute()

    async def remove_worker(self, worker_id: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.keys.worker(worker_id))
        pipe.zrem(self.keys.workers(), worker_id)
        await pipe.execute()

    async def live_workers(self) -> list[tuple[str, float, dict[str, Any]]]:
        """(id, last seen epoch seconds, details) of each worker seen recently."""
        horizon = time.time() * 1000 - 3 * self.settings.lease_timeout
        ids = await self.redis.zrangebyscore(self.keys.workers(), horizon, "+inf")
        if not ids:
            return []
        raws = await self.redis.mget([self.keys.worker(text(i)) for i in ids])
        live = []
        for worker_id, raw in zip(ids, raws, strict=True):
            if raw:
                details = orjson.loads(raw)
                live.append((text(worker_id), float(details["last_seen"]), details))
        return live
