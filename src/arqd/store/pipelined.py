"""``PipelinedRedis``: a redis.asyncio client whose commands from concurrent coroutines are
written together on one connection (see ``multiplex``), for task handlers that talk to Redis.

Two hundred handlers that each INCR a counter cost two hundred round trips and two hundred
pool checkouts with plain redis-py; here they cost one write and one read. It is a
``redis.asyncio.Redis`` in every other way: the same methods and reply types. Commands that
would hold the shared connection (blocking pops, ``WAIT``, transactions, subscriptions,
``MONITOR``) and commands that change the connection's state run on the pool as usual.
"""

from __future__ import annotations

import inspect
from typing import Any

import redis.asyncio as aioredis
from redis.client import EMPTY_RESPONSE, NEVER_DECODE
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from arqd.store.multiplex import Multiplexer

# Commands that wait server-side, need a connection of their own, or change its state.
OWN_CONNECTION = frozenset(
    {
        "AUTH", "BLMOVE", "BLMPOP", "BLPOP", "BRPOP", "BRPOPLPUSH", "BZMPOP", "BZPOPMAX",
        "BZPOPMIN", "CLIENT", "DISCARD", "EXEC", "HELLO", "MONITOR", "MULTI", "PSUBSCRIBE",
        "PUNSUBSCRIBE", "QUIT", "READONLY", "READWRITE", "RESET", "SELECT", "SHUTDOWN",
        "SSUBSCRIBE", "SUBSCRIBE", "SUNSUBSCRIBE", "UNSUBSCRIBE", "UNWATCH", "WAIT",
        "WAITAOF", "WATCH",
    }
)  # fmt: skip
BLOCKING_WITH_OPTION = frozenset({"XREAD", "XREADGROUP"})  # only with BLOCK


class PipelinedRedis(aioredis.Redis):
    """A ``redis.asyncio.Redis`` that auto-pipelines; make it with ``from_url``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._multiplexer = Multiplexer(self)
        kwargs = self.connection_pool.connection_kwargs
        # hiredis packs str as UTF-8: any other encoding takes redis-py's own path.
        self._packs_like_redis_py = str(kwargs.get("encoding", "utf-8")).lower() in (
            "utf-8",
            "utf8",
        )

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        command = args[0]
        words = command.split() if isinstance(command, str) else [command]  # "CLIENT SETNAME"
        name = str(words[0]).upper()
        if not self._shares(name, args, options):
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        try:
            reply = await self._multiplexer.call(*words, *args[1:])
        except ResponseError:
            if EMPTY_RESPONSE in options:
                return options[EMPTY_RESPONSE]
            raise
        except (TypeError, RedisConnectionError):
            # An argument hiredis cannot pack (redis-py says which and why), or the shared
            # connection broke (redis-py reconnects and resends as its retry policy says).
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        options.pop(EMPTY_RESPONSE, None)
        options.pop("keys", None)
        callback = self.response_callbacks.get(command)
        if callback is None:
            return reply
        parsed = callback(reply, **options)
        return await parsed if inspect.isawaitable(parsed) else parsed

    def _shares(self, name: str, args: tuple[Any, ...], options: dict[str, Any]) -> bool:
        if not self._packs_like_redis_py or NEVER_DECODE in options:
            return False
        if self.single_connection_client or name in OWN_CONNECTION:
            return False
        if name in BLOCKING_WITH_OPTION:
            words = (a.upper() for a in args[1:] if isinstance(a, str | bytes))
            return not any(word in ("BLOCK", b"BLOCK") for word in words)
        return True

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await self._multiplexer.close()
        await super().aclose(close_connection_pool)
