"""One Redis connection shared by many coroutines (auto-pipelining, as ioredis does).

The store sends its hot scripts (enqueue, dequeue, answer) through one; ``PipelinedRedis``
offers the same to task handlers.

Commands from coroutines that run in the same turn of the event loop are packed together
and written in one call; a reader task takes the replies off the connection in order and
hands each to its caller. A burst of N concurrent commands then costs one write and a
few reads instead of N round trips, and no caller waits for a connection.

The connection comes from the client's pool, so it is set up as the pool sets up any
(authentication, database, TLS, RESP version, client name). If it breaks or stops
answering for ``socket_timeout`` seconds, every command waiting on it fails with a
``ConnectionError`` or ``TimeoutError`` and the next command opens a fresh one. A caller
cancelled while waiting is skipped when its reply arrives, so replies never shift.

Only commands that answer at once belong here: a blocking pop, a transaction or a
subscription would hold every other caller up (``PipelinedRedis`` routes those elsewhere).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, cast

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Arg = str | bytes | int | float
DRAIN_ABOVE = 1024 * 1024  # bytes waiting for the socket before a new command waits for room


class Multiplexer:
    """Commands from any number of coroutines, written together on one connection."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._link: _Link | None = None
        self._connecting = asyncio.Lock()

    async def call(self, *args: Arg) -> Any:
        """Run one command; a Redis error reply is raised as redis-py's exception for it."""
        link = self._link
        if link is None or link.broken is not None:
            link = await self._connect()
        elif link.buffered() > DRAIN_ABOVE:
            await link.drain()
        reply = await link.send(hiredis.pack_command(cast(Any, args)))
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def _connect(self) -> _Link:
        async with self._connecting:
            link = self._link
            if link is None or link.broken is not None:
                # A broken link's connection goes back first, once: connecting may fail,
                # and the next call retries.
                await self.close()
                pool = self.redis.connection_pool
                connection = await pool.get_connection()  # type: ignore[no-untyped-call]
                link = self._link = _Link(connection)
            return link

    async def close(self) -> None:
        """Fail what is still waiting and give the connection back to the pool."""
        link, self._link = self._link, None
        if link is not None:
            await link.close()
            await self.redis.connection_pool.release(link.connection)


class _Link:
    """One connection of a Multiplexer: its waiting callers, write buffer and reader."""

    def __init__(self, connection: AbstractConnection) -> None:
        self.connection = connection
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.out: list[bytes] = []
        self.broken: BaseException | None = None
        self.replies = 0  # replies read so far: the watchdog's sign of progress
        self._loop = asyncio.get_running_loop()
        self._timeout = connection.socket_timeout
        self._watched_at = -1
        self._watchdog: asyncio.TimerHandle | None = None
        self._closing: asyncio.Task[None] | None = None
        self._reader = self._loop.create_task(self._read(), name="arqd-multiplex-reader")

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        if self.broken is not None:
            raise _failure(self.broken)
        reply: asyncio.Future[Any] = self._loop.create_future()
        self.waiting.append(reply)
        first = not self.out
        self.out.append(packed)
        if first:
            if len(self.waiting) == 1:  # nothing else in flight: write it now
                self._flush()
            else:  # gather what else this turn of the loop sends
                self._loop.call_soon(self._flush)
        if self._timeout and self._watchdog is None:
            self._watch()
        return reply

    def buffered(self) -> int:
        writer = getattr(self.connection, "_writer", None)
        return 0 if writer is None else int(writer.transport.get_write_buffer_size())

    async def drain(self) -> None:
        writer = getattr(self.connection, "_writer", None)
        if writer is not None:
            await writer.drain()

    def _flush(self) -> None:
        out, self.out = self.out, []
        if self.broken is not None or not out:
            return
        writer = getattr(self.connection, "_writer", None)
        if writer is None:
            self._break(RedisConnectionError("the connection to Redis is closed"))
            return
        try:
            writer.write(out[0] if len(out) == 1 else b"".join(out))
        except Exception as exc:  # a closed transport, say
            self._break(exc)

    async def _read(self) -> None:
        read = self._reply_reader()
        waiting = self.waiting
        try:
            while True:
                reply = await read()
                self.replies += 1
                if not waiting:
                    raise RedisConnectionError("Redis sent a reply nobody asked for")
                caller = waiting.popleft()
                if not caller.done():  # a caller cancelled while it waited is skipped
                    caller.set_result(reply)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a reply error is a value, so this is the connection
            self._break(exc)

    def _reply_reader(self) -> Callable[[], Awaitable[Any]]:
        """The connection's parser, read directly: it hands a reply error back as a value
        and sets no timeout of its own (the watchdog keeps time for the whole link).
        Without it (another redis-py), the connection's public read, errors caught."""
        parser = getattr(self.connection, "_parser", None)
        if parser is not None and hasattr(parser, "read_response"):
            return cast(Callable[[], Awaitable[Any]], parser.read_response)
        connection = self.connection

        async def read() -> Any:
            try:
                return await connection.read_response(timeout=math.inf)
            except ResponseError as exc:
                return exc

        return read

    def _watch(self) -> None:
        """Break the link when replies are awaited and none came for ``socket_timeout``."""
        self._watchdog = None
        if self.broken is not None or not self.waiting:
            return
        if self.replies == self._watched_at:
            self._break(RedisTimeoutError("Timeout reading from Redis"))
            return
        self._watched_at = self.replies
        self._watchdog = self._loop.call_later(cast(float, self._timeout), self._watch)

    def _break(self, exc: BaseException) -> None:
        if self.broken is not None:
            return
        self.broken = exc
        if self._watchdog is not None:
            self._watchdog.cancel()
        while self.waiting:
            caller = self.waiting.popleft()
            if not caller.done():
                caller.set_exception(_failure(exc))
        self._closing = self._loop.create_task(self.connection.disconnect(nowait=True))
        self._reader.cancel()

    async def close(self) -> None:
        self._break(RedisConnectionError("the multiplexer was closed"))
        assert self._closing is not None  # _break started the disconnect
        # Both ends awaited, without taking on the reader's cancellation.
        await asyncio.wait([self._reader, self._closing])


def _failure(exc: BaseException) -> Exception:
    """What a waiting caller sees when the link breaks: redis-py's own error types."""
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return exc
    if isinstance(exc, TimeoutError):
        return RedisTimeoutError("Timeout reading from Redis")
    return RedisConnectionError(f"Error talking to Redis: {exc!r}")
