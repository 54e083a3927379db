"""One Redis connection shared by many coroutines (auto-pipelining, as ioredis does).

The store sends its hot scripts (enqueue, dequeue, answer) through one; ``PipelinedRedis``
offers the same to task handlers.

Commands from coroutines that run in the same turn of the event loop are packed together
and written in one call; replies are parsed as they arrive and handed to their callers in
order. A burst of N concurrent commands then costs one write and a
few reads instead of N round trips, and no caller waits for a connection.

The connection comes from the client's pool, so it is set up as the pool sets up any
(authentication, database, TLS, RESP version, client name; the current master, behind
Sentinel). If it breaks or stops answering for ``socket_timeout`` seconds, or its server
answers READONLY (a failover made it a replica), every command waiting on it fails with a
``ConnectionError`` or ``TimeoutError`` and the next command opens a fresh one. A caller
cancelled while waiting is skipped when its reply arrives, so replies never shift.

Only commands that answer at once belong here: a blocking pop, a transaction or a
subscription would hold every other caller up (``PipelinedRedis`` routes those elsewhere).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, cast

import hiredis
import redis.asyncio as aioredis
from redis._parsers.base import BaseParser
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from arqd.store.packing import Arg, pack

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
        reply = await link.send(pack(args))
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
                try:
                    link = self._link = _Link(connection)
                except BaseException:
                    await pool.release(connection)
                    raise
            return link

    async def close(self) -> None:
        """Fail what is still waiting and give the connection back to the pool."""
        link, self._link = self._link, None
        if link is not None:
            await link.close()
            await self.redis.connection_pool.release(link.connection)


class _Link(asyncio.Protocol):
    """One connection of a Multiplexer: its waiting callers, write buffer and parser.

    Once the pool has set the connection up, the link becomes its transport's protocol:
    each reply is parsed and handed to its caller as the bytes arrive, with no reader task
    between (one task switch less per reply: about 30% more calls a second one at a time).
    The link never goes back to the pool connected."""

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
        self._room: asyncio.Future[None] | None = None  # while the transport asks for a pause
        self._parser = hiredis.Reader(**_reader_options(connection))
        writer = getattr(connection, "_writer", None)
        if writer is None:
            raise RedisConnectionError("the connection to Redis is closed")
        self._transport = cast(asyncio.Transport, writer.transport)
        # redis-py's own protocol still hears of the end, so its close() can finish.
        self._stream_protocol = self._transport.get_protocol()
        self._transport.set_protocol(self)

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
        return int(self._transport.get_write_buffer_size())

    async def drain(self) -> None:
        if self._room is not None:
            await asyncio.shield(self._room)

    def _flush(self) -> None:
        out, self.out = self.out, []
        if self.broken is not None or not out:
            return
        try:
            self._transport.write(out[0] if len(out) == 1 else b"".join(out))
        except Exception as exc:  # a closed transport, say
            self._break(exc)

    # The transport's calls.

    def data_received(self, data: bytes) -> None:
        parser, waiting = self._parser, self.waiting
        parser.feed(data)
        try:
            while (reply := parser.gets()) is not _INCOMPLETE:
                self.replies += 1
                if not waiting:
                    raise RedisConnectionError("Redis sent a reply nobody asked for")
                if isinstance(reply, ReadOnlyError):  # a failover made this server a replica
                    raise RedisConnectionError(f"the server is now a replica: {reply}")
                caller = waiting.popleft()
                if not caller.done():  # a caller cancelled while it waited is skipped
                    caller.set_result(reply)
        except Exception as exc:  # a reply error is a value, so this is the connection
            self._break(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._break(exc or RedisConnectionError("Connection closed by server."))
        self._stream_protocol.connection_lost(exc)
        if self._room is not None and not self._room.done():
            self._room.set_result(None)

    def pause_writing(self) -> None:
        if self._room is None:
            self._room = self._loop.create_future()

    def resume_writing(self) -> None:
        room, self._room = self._room, None
        if room is not None and not room.done():
            room.set_result(None)

    # Ending.

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

    async def close(self) -> None:
        self._break(RedisConnectionError("the multiplexer was closed"))
        assert self._closing is not None  # _break started the disconnect
        await self._closing


_INCOMPLETE = object()  # what the parser gives while a reply is still arriving


def _reader_options(connection: AbstractConnection) -> dict[str, Any]:
    """A reply parser like redis-py's for this connection: its error classes, its
    encoding when it decodes replies."""
    options: dict[str, Any] = {
        "protocolError": InvalidResponse,
        "replyError": BaseParser.parse_error,
        "notEnoughData": _INCOMPLETE,
    }
    encoder = connection.encoder
    if encoder.decode_responses:
        options["encoding"] = encoder.encoding
        options["errors"] = encoder.encoding_errors
    return options


def _failure(exc: BaseException) -> Exception:
    """What a waiting caller sees when the link breaks: redis-py's own error types."""
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return exc
    if isinstance(exc, TimeoutError):
        return RedisTimeoutError("Timeout reading from Redis")
    return RedisConnectionError(f"Error talking to Redis: {exc!r}")
