"""Circuit breakers and rate limits, their state in Redis so every process shares it.

A task type's breaker lives with its queue's keys (the dequeue and finish scripts keep
it); a named breaker, one a handler wraps around a dependency, lives under
``{breakers}``. Rate limits are GCRA states under ``{rl:<scope>}``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

from arqd.core.settings import Settings
from arqd.store import codec
from arqd.store.codec import BreakerAnswer, Token, text
from arqd.store.connection import RedisClient
from arqd.store.keys import Keys
from arqd.store.scripts import Scripts
from arqd.store.workers import WorkerInfo

BreakerFields = dict[bytes, bytes]  # a breaker's hash: state, fails, until, trial, to_*


class Limits:
    """Breakers (named and per task type) and GCRA rate limits."""

    def __init__(self, scripts: Scripts, keys: Keys, settings: Settings) -> None:
        self.scripts = scripts
        self.redis: RedisClient = scripts.redis
        self.keys = keys
        self.settings = settings

    async def breaker(
        self, name: str, op: str, threshold: int = 0, open_ms: int = 0
    ) -> BreakerAnswer:
        """A named breaker: op allow | ok | fail | neutral | reset."""
        k = self.keys
        keys = [k.breaker(name), k.breakers(), k.breaker_events()]
        reply = await self.scripts.run(
            "breaker", keys, op, threshold, open_ms, self.settings.events_max, name
        )
        return codec.decode_breaker(reply)

    async def named_breakers(self) -> list[tuple[str, BreakerFields]]:
        """Every named breaker and its stored fields."""
        names = sorted(text(n) for n in await self.redis.smembers(self.keys.breakers()))
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(self.keys.breaker(name))
        return list(zip(names, await pipe.execute(), strict=True))

    async def type_breakers(
        self, queue: str, also: Iterable[str] = ()
    ) -> list[tuple[str, BreakerFields]]:
        """The breakers of ``queue``'s task types that have recorded a failure, and those of
        the types ``also`` names (a type with no record yet is closed: no fields)."""
        names = await self.redis.smembers(self.keys.type_breakers(queue))
        types = sorted({*(text(t) for t in names), *also})
        pipe = self.redis.pipeline(transaction=False)
        for task_type in types:
            pipe.hgetall(self.keys.type_breaker(queue, task_type))
        return list(zip(types, await pipe.execute(), strict=True))

    async def all_breakers(
        self, queues: Sequence[str], served: Mapping[str, Collection[str]] | None = None
    ) -> list[tuple[str, BreakerFields]]:
        """Task types' breakers of ``queues`` (named ``task:QUEUE:TYPE``), then named ones.
        ``served`` (see ``served_breakers``) adds the types served on each queue."""
        served = served or {}
        found = []
        for queue in queues:
            types = await self.type_breakers(queue, served.get(queue, ()))
            found += [(f"task:{queue}:{t}", f) for t, f in types]
        return found + await self.named_breakers()

    async def reset_type_breaker(self, queue: str, task_type: str) -> int:
        """Close a task type's breaker and release what it held; returns its old state."""
        keys = [self.keys.queue(queue)]
        return int(
            await self.scripts.run("reset_breaker", keys, task_type, self.settings.events_max)
        )

    async def take_tokens(
        self, scope: str, wanted: Sequence[tuple[str, float, int]]
    ) -> list[Token]:
        """One token of a GCRA limit for each (subject, interval ms, burst), in order, in
        one script call (the keys of a scope share a hash tag)."""
        keys = [self.keys.rate_limit(scope, subject) for subject, _, _ in wanted]
        args = [value for _, interval, burst in wanted for value in (interval, burst)]
        return codec.decode_tokens(await self.scripts.run("ratelimit", keys, *args))

    async def note_refused(self, fields: dict[str, str | int]) -> None:
        """Append a refusal by a rate limit to its capped event stream (on the shared
        connection: a flood of refusals must cost less than the requests it turns away)."""
        cap = self.settings.events_max
        flat = [item for pair in fields.items() for item in pair]
        key = self.keys.rate_limit_events()
        await self.scripts.send(key, "XADD", key, "MAXLEN", "~", cap, "*", *flat)


def served_breakers(workers: Iterable[WorkerInfo]) -> dict[str, set[str]]:
    """Queue -> the task types with a breaker that live workers serve on it, from what
    each worker says of itself in the registry (``queues`` and ``breakers``)."""
    served: dict[str, set[str]] = {}
    for worker in workers:
        types = worker.details.get("breakers", ())
        for queue in worker.details.get("queues", ()):
            served.setdefault(queue, set()).update(types)
    return served
