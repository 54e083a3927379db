"""A lean request path for the hot commands (enqueue, dequeue, finish).

redis-py's generic path costs about 60 µs of CPU a command before any byte is sent: the
blocking pool's checkout (a condition, a timeout, a health check that polls the socket),
argument encoding one value at a time, and the reply's post-processing. The lane keeps a
few connections checked out of the same pool, packs a command in one C call
(``hiredis.pack_command``) and writes it on an idle connection: about half the cost.

Failures behave as on the generic path: a connection error falls back to
``Redis.execute_command``, which reconnects and retries as the pool is configured (a
timeout is not retried: the command may have run); a reply error (``NOSCRIPT``...) is
raised. A connection that saw any other failure has been disconnected by redis-py, so no
stale reply can ever be read on it; it reconnects on its next use. The pool still owns
these connections: closing the client closes them.
"""

from __future__ import annotations

from typing import Any, cast

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

Arg = str | bytes | int | float
HELD = 64  # connections the lane may keep; more concurrent callers take the generic path


class Lane:
    """Pre-packed commands on connections held aside from the pool's checkout."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._idle: list[AbstractConnection] = []
        self._held = 0

    async def call(self, *args: Arg) -> Any:
        """Run one command, its arguments as redis-py takes them (no bools, no None)."""
        if self._idle:
            connection = self._idle.pop()
        elif self._held < HELD:
            self._held += 1
            try:
                pool = self.redis.connection_pool
                connection = await pool.get_connection()  # type: ignore[no-untyped-call]
            except BaseException:
                self._held -= 1
                raise
        else:
            return await self._generic(args)
        try:
            packed = hiredis.pack_command(cast(Any, args))  # its stub types a 1-tuple
            await connection.send_packed_command(packed, check_health=False)
            return await connection.read_response()
        except ResponseError:
            raise  # the reply was read whole: the connection stays usable
        except RedisConnectionError:
            return await self._generic(args)
        finally:
            self._idle.append(connection)

    async def _generic(self, args: tuple[Arg, ...]) -> Any:
        """redis-py's own path: pool checkout, reconnection and retries."""
        return await self.redis.execute_command(*args)  # type: ignore[no-untyped-call]
