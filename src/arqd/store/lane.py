"""A lean request path for the hot commands (enqueue, dequeue, finish).

redis-py's generic path costs about 60 µs of CPU a command before any byte is sent: the
blocking pool's checkout (a condition, a timeout, a health check that polls the socket),
argument encoding one value at a time, and the reply's post-processing. The lane keeps a
few connections checked out of the same pool, packs a command in one C call
(``hiredis.pack_command``), writes it on an idle connection and reads the reply with the
connection's own parser: less than half the cost.

Failures behave as on the generic path: a connection error falls back to
``Redis.execute_command``, which reconnects and retries as the pool is configured (a
timeout is not retried: the command may have run); a reply error (``NOSCRIPT``...) is
raised. A connection that saw any other failure is disconnected at once, so no
stale reply can ever be read on it; it reconnects on its next use. The pool still owns
these connections: closing the client closes them.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Arg = str | bytes | int | float
DRAIN_ABOVE = 256 * 1024  # bytes buffered for the socket before a write waits for room
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
            return await self._request(connection, packed)
        except ResponseError:
            raise  # the reply was read whole: the connection stays usable
        except RedisConnectionError:
            return await self._generic(args)
        finally:
            self._idle.append(connection)

    async def _request(self, connection: AbstractConnection, packed: bytes) -> Any:
        """Write and read on the connection's own stream and parser: redis-py's
        ``send_packed_command``/``read_response`` wrap them in layers (a task per write for
        its timeout, health and push checks) that cost ~15 µs a call. Those attributes are
        redis-py's internals, so without them (another version) the public calls are used."""
        writer = getattr(connection, "_writer", None)
        parser = getattr(connection, "_parser", None)
        if writer is None or parser is None:  # disconnected, or a redis-py without them
            await connection.send_packed_command(packed, check_health=False)
            return await connection.read_response()
        try:
            writer.write(packed)
            if writer.transport.get_write_buffer_size() > DRAIN_ABOVE:
                await writer.drain()
            async with asyncio.timeout(connection.socket_timeout):
                reply = await parser.read_response()
        except BaseException as exc:
            # Whatever happened, a reply may be half read or still coming: never reuse it.
            await connection.disconnect(nowait=True)
            if isinstance(exc, TimeoutError):
                raise RedisTimeoutError("Timeout reading from Redis") from None
            if isinstance(exc, OSError):
                raise RedisConnectionError(f"Error talking to Redis: {exc}") from exc
            raise
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    async def _generic(self, args: tuple[Arg, ...]) -> Any:
        """redis-py's own path: pool checkout, reconnection and retries."""
        return await self.redis.execute_command(*args)  # type: ignore[no-untyped-call]
