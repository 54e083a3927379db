"""PipelinedRedis against a real Redis: concurrent commands share one connection, replies
reach the right callers, and errors, cancellations, timeouts and broken connections behave
as with plain redis-py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import DataError, NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from arqd.store.connection import connect_server
from arqd.store.pipelined import PipelinedRedis
from conftest import RedisServer, until_blocked

# Spins for ARGV[1] microseconds: on os.clock where scripts have it (Redis 7.2+, and
# valkey, whose TIME does not advance inside a script); on TIME in Redis 7.0, which has no os.
BUSY_SCRIPT = """
local has_clock, clock = pcall(function() return os.clock end)
if has_clock then
  local stop = clock() + tonumber(ARGV[1]) / 1000000
  repeat until clock() >= stop
  return 'done'
end
local t = redis.call('TIME')
local stop = tonumber(t[1]) * 1000000 + tonumber(t[2]) + tonumber(ARGV[1])
repeat
  t = redis.call('TIME')
until tonumber(t[1]) * 1000000 + tonumber(t[2]) >= stop
return 'done'
"""


@pytest.fixture
async def plain(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
async def piped(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = connect_server(redis_server.url, client=PipelinedRedis)
    yield client
    await client.aclose()


async def _connections(plain: aioredis.Redis) -> int:
    return len(await plain.client_list(_type="normal"))


async def test_concurrent_commands_share_one_connection_and_each_gets_its_reply(
    piped: aioredis.Redis, plain: aioredis.Redis
) -> None:
    await piped.ping()
    before = await _connections(plain)
    keys = [f"piped:count:{i % 7}" for i in range(700)]
    await plain.delete(*set(keys))

    replies = await asyncio.gather(*(piped.incr(key) for key in keys))

    # Each key's seven counters went up one by one, in the order the calls were made.
    for i in range(7):
        assert [r for r, k in zip(replies, keys, strict=True) if k == f"piped:count:{i}"] == list(
            range(1, 101)
        )
    assert await _connections(plain) == before
    await plain.delete(*set(keys))


async def test_replies_are_parsed_as_redis_py_parses_them(piped: aioredis.Redis) -> None:
    assert await piped.set("piped:s", "v", ex=60) is True
    assert await piped.get("piped:s") == b"v"
    assert await piped.hset("piped:h", mapping={"a": 1, "b": "x"}) == 2
    assert await piped.hgetall("piped:h") == {b"a": b"1", b"b": b"x"}
    assert await piped.zadd("piped:z", {"m": 1.5}) == 1
    assert await piped.zrange("piped:z", 0, -1, withscores=True) == [(b"m", 1.5)]
    assert await piped.exists("piped:s", "piped:none") == 1
    assert await piped.ttl("piped:s") > 0
    assert await piped.client_setname("piped-test") is True  # a two-word command
    await piped.delete("piped:s", "piped:h", "piped:z")


async def test_a_reply_error_reaches_only_its_caller(piped: aioredis.Redis) -> None:
    await piped.set("piped:text", "x")
    results = await asyncio.gather(
        piped.get("piped:text"),
        piped.incr("piped:text"),
        piped.evalsha("0" * 40, 0),
        piped.get("piped:text"),
        return_exceptions=True,
    )
    assert results[0] == b"x"
    assert isinstance(results[1], ResponseError)
    assert "not an integer" in str(results[1])
    assert isinstance(results[2], NoScriptError)
    assert results[3] == b"x"
    await piped.delete("piped:text")


async def test_a_value_redis_py_refuses_is_refused_the_same_way(piped: aioredis.Redis) -> None:
    with pytest.raises(DataError, match="bool"):
        await piped.set("piped:bad", True)
    assert await piped.get("piped:bad") is None


async def test_blocking_commands_do_not_hold_up_the_others(
    piped: aioredis.Redis, plain: aioredis.Redis
) -> None:
    await piped.set("piped:quick", "q")
    blpop = asyncio.ensure_future(piped.blpop(["piped:never"], timeout=5))
    xread = asyncio.ensure_future(piped.xread({"piped:stream": "$"}, block=5000))
    await until_blocked(plain, 2)  # both are waiting in Redis now

    assert await asyncio.wait_for(piped.get("piped:quick"), 2) == b"q"  # not after 5 s
    assert not blpop.done()
    assert not xread.done()

    await piped.rpush("piped:never", "item")
    await piped.xadd("piped:stream", {"f": "v"})
    popped: Any = await blpop
    read: Any = await xread
    assert list(popped) == [b"piped:never", b"item"]
    assert read[0][0] == b"piped:stream"
    await piped.delete("piped:quick", "piped:stream")


async def test_a_caller_cancelled_while_waiting_never_shifts_the_replies(
    piped: aioredis.Redis,
) -> None:
    await piped.mset({"piped:a": "a", "piped:b": "b"})
    # Redis runs the script for 1 s and answers no one meanwhile (nothing to observe):
    # the short sleeps below let each command be written, well within that second.
    busy = asyncio.ensure_future(piped.eval(BUSY_SCRIPT, 0, 1_000_000))
    await asyncio.sleep(0.02)
    cancelled = asyncio.ensure_future(piped.get("piped:a"))
    after = asyncio.ensure_future(piped.get("piped:b"))
    await asyncio.sleep(0.02)
    cancelled.cancel()

    assert await busy == b"done"
    assert await after == b"b"
    assert cancelled.cancelled()
    assert [await piped.get("piped:a") for _ in range(3)] == [b"a"] * 3
    await piped.delete("piped:a", "piped:b")


async def test_a_killed_connection_is_replaced_and_the_command_goes_through(
    piped: aioredis.Redis, plain: aioredis.Redis
) -> None:
    await piped.set("piped:k", "1")
    killed = await plain.client_kill_filter(_type="normal", skipme=True)
    assert int(killed) >= 1

    assert await piped.incr("piped:k") == 2
    assert await piped.get("piped:k") == b"2"
    await piped.delete("piped:k")


async def test_a_silent_server_times_the_waiting_callers_out_and_the_next_reconnects(
    redis_server: RedisServer, plain: aioredis.Redis
) -> None:
    piped = PipelinedRedis.from_url(redis_server.url, socket_timeout=0.1)
    try:
        await piped.set("piped:t", "t")
        results = await asyncio.gather(
            piped.eval(BUSY_SCRIPT, 0, 600_000), piped.get("piped:t"), return_exceptions=True
        )
        assert all(isinstance(r, RedisTimeoutError) for r in results), results
        await asyncio.wait_for(plain.ping(), 10)  # answered once the script ends
        assert await piped.get("piped:t") == b"t"
        await piped.delete("piped:t")
    finally:
        await piped.aclose()


async def test_a_client_with_another_encoding_takes_redis_py_s_own_path(
    redis_server: RedisServer,
) -> None:
    piped = PipelinedRedis.from_url(redis_server.url, encoding="latin-1", decode_responses=True)
    try:
        await piped.set("piped:latin", "café")
        raw = aioredis.Redis.from_url(redis_server.url)
        assert await raw.get("piped:latin") == "café".encode("latin-1")
        await raw.aclose()
        assert await piped.get("piped:latin") == "café"
        await piped.delete("piped:latin")
    finally:
        await piped.aclose()
