"""The Lua scripts, read from ``lua/*.lua`` once, each with the shared helpers it uses,
and the one way to run them (``Scripts.run``).

``common.lua`` is a list of top-level definitions (constants and ``local function``s).
Redis runs a script's whole text on every call, so each definition costs time on every
call: a script gets only the definitions it names, and those they name in turn, in the
order ``common.lua`` gives them.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from arqd.core.errors import ReplicasBehind
from arqd.store.multiplex import Multiplexer
from arqd.store.nodes import Node, Nodes

NAMES = (
    "enqueue",
    "dequeue",
    "finish",
    "heartbeat",
    "cancel",
    "retry",
    "stats",
    "breaker",
    "ratelimit",
    "reset_breaker",
    "delete",
    "run_now",
    "schedule_due",
    "schedule_fire",
    "schedule_upsert",
    "pause",
    "resume",
    "progress",
    "workflow_start",
    "workflow_cancel",
    "workflow_notices",
    "workflow_deliver",
    "workflow_sent",
    "workflow_noticed",
)

# Scripts made from another's file (NAMES are the files) with a helper that file's own
# script goes without (there the helper's name is `false`): a call that needs no dedupe, or
# ends no workflow member, runs the smaller one. Redis's Lua collector walks the code of
# every loaded script, so unused code costs every call (bench.scriptcost: the two helpers
# cost a one-task dequeue 11,000 instructions, 5%). enqueue.lua, finish.lua and
# dequeue.lua say how each picks.
VARIANTS = {
    "enqueue_dedupe": ("enqueue", "dedupe"),
    "dequeue_members": ("dequeue", "workflows"),
    "finish_members": ("finish", "workflows"),
}
_LEFT_OUT = {file: helper for file, helper in VARIANTS.values()}

_DEFINITION = re.compile(r"^local (?:function (\w+)|([\w, ]+?) =)", re.MULTILINE)
_WORD = re.compile(r"[A-Za-z_]\w*")


@dataclass(frozen=True, slots=True)
class Helper:
    """One top-level definition of ``common.lua``: the names it defines, and its text."""

    names: frozenset[str]
    text: str


@cache
def helpers() -> tuple[Helper, ...]:
    """``common.lua`` cut at each top-level ``local``; comments go with what follows them."""
    text = (files("arqd.store") / "lua" / "common.lua").read_text()
    starts = [_with_comment(text, m.start()) for m in _DEFINITION.finditer(text)]
    out = []
    for start, end in zip(starts, [*starts[1:], len(text)], strict=True):
        block = text[start:end]
        match = _DEFINITION.search(block)
        assert match is not None
        names = match.group(1) or match.group(2)
        out.append(Helper(frozenset(n.strip() for n in names.split(",")), block))
    return tuple(out)


def _with_comment(text: str, start: int) -> int:
    """Where the definition at ``start`` begins once the comment lines just above it count."""
    while start > 0:
        line_start = text.rfind("\n", 0, start - 1) + 1
        if not text.startswith("--", line_start):
            break
        start = line_start
    return start


def _words(lua: str) -> set[str]:
    code = "\n".join(line.split("--", 1)[0] for line in lua.splitlines())
    return set(_WORD.findall(code))


@cache
def source(name: str) -> str:
    """The full source of script ``name``: the helpers it needs, then the script."""
    file = VARIANTS[name][0] if name in VARIANTS else name
    body = (files("arqd.store") / "lua" / f"{file}.lua").read_text()
    return with_helpers(body, without=None if name in VARIANTS else _LEFT_OUT.get(name))


def with_helpers(body: str, without: str | None = None) -> str:
    """Lua text ``body`` after the helpers it needs (the tests run helpers on their own);
    the helper named ``without`` is left out, that name being ``false``."""
    wanted = _words(body)
    chosen: set[int] = set()
    grew = True
    while grew:
        grew = False
        for i, helper in enumerate(helpers()):
            if i not in chosen and helper.names & wanted and without not in helper.names:
                chosen.add(i)
                wanted |= _words(helper.text)
                grew = True
    prelude = "".join(helper.text for i, helper in enumerate(helpers()) if i in chosen)
    if without is not None:
        prelude += f"local {without} = false\n"
    return prelude + "\n" + body


@cache
def sha(name: str) -> str:
    return hashlib.sha1(source(name).encode()).hexdigest()


def evalsha(name: str, keys: Sequence[str], args: Sequence[Any]) -> list[Any]:
    """The command that runs script ``name`` if Redis has it cached."""
    return ["EVALSHA", sha(name), len(keys), *keys, *args]


def eval_source(name: str, keys: Sequence[str], args: Sequence[Any]) -> list[Any]:
    """The command that runs script ``name`` from its text, caching it in Redis: what
    follows an ``EVALSHA`` refused with NOSCRIPT (Redis restarted, or SCRIPT FLUSH)."""
    return ["EVAL", source(name), len(keys), *keys, *args]


class Scripts:
    """Runs the scripts (and other commands that answer at once) on the node that holds
    their first key (``nodes``).

    Commands go over one connection per node, shared by every coroutine (see
    ``multiplex``). If it broke, redis-py's own path reconnects and resends as the pool's
    retry policy says; on a cluster a call is also sent again after a redirection.
    Nothing is lost if the first copy had run: every script is safe to send twice
    (``enqueue`` finds its task, an answer sent twice is refused by its fencing token, and
    tasks a lost dequeue leased are reclaimed when their lease lapses)."""

    def __init__(self, nodes: Nodes, replica_acks: int = 0, ack_timeout_ms: int = 0) -> None:
        self.nodes = nodes
        self.redis = nodes.redis
        self.replica_acks = replica_acks
        self.ack_timeout_ms = ack_timeout_ms

    @property
    def multiplexer(self) -> Multiplexer:
        """The shared connection of the one server (not on a cluster: see ``nodes``)."""
        if self.nodes.single is None:
            raise TypeError("a cluster has a multiplexer per master: see Scripts.nodes")
        return self.nodes.single.multiplexer

    async def run(self, name: str, keys: Sequence[str], *args: Any) -> Any:
        """Run script ``name`` on ``keys``; a Redis error reply is raised."""
        node = self.nodes.single  # one server: straight to its node (the hot path)
        try:
            if node is not None:
                return await node.call(*evalsha(name, keys, args))
            return await self.nodes.call(keys[0], *evalsha(name, keys, args))
        except NoScriptError:
            return await self.nodes.call(keys[0], *eval_source(name, keys, args))

    async def run_acked(self, name: str, keys: Sequence[str], *args: Any) -> Any:
        """``run``, then, with replica acks asked for (``ARQD_REPLICA_ACKS``), ``WAIT`` on
        the same connection until that many replicas have the write; raises ReplicasBehind
        when fewer acknowledge it in time (the write stays, and is safe to send again)."""
        if not self.replica_acks:
            return await self.run(name, keys, *args)
        try:
            command = evalsha(name, keys, args)
            return await self.nodes.routed(keys[0], lambda node: self._acked(node, command))
        except NoScriptError:
            command = eval_source(name, keys, args)
            return await self.nodes.routed(keys[0], lambda node: self._acked(node, command))

    async def _acked(self, node: Node, command: list[Any]) -> Any:
        wait = ("WAIT", self.replica_acks, self.ack_timeout_ms)
        mux = node.multiplexer
        # Written together: WAIT covers what the connection wrote before it.
        answers: Any = await asyncio.gather(
            mux.call(*command), mux.call(*wait), return_exceptions=True
        )
        if any(isinstance(answer, RedisConnectionError) for answer in answers):
            pipe = node.redis.pipeline(transaction=False)  # one pooled connection for both
            pipe.execute_command(*command)
            pipe.execute_command(*wait)
            answers = await pipe.execute(raise_on_error=False)
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        reply, acked = answers
        if int(acked) < self.replica_acks:
            raise ReplicasBehind(int(acked), self.replica_acks, self.ack_timeout_ms)
        return reply

    async def send(self, key: str, *args: Any) -> Any:
        """One command on the shared connection of ``key``'s node."""
        return await self.nodes.call(key, *args)

    async def on_key(self, command: str, key: str, *args: Any) -> Any:
        """``command key *args`` on the shared connection of ``key``'s node: the way to
        plain commands that many coroutines send at once (redis-py's cluster client failed
        now and then when they opened connections together)."""
        return await self.nodes.call(key, command, key, *args)

    async def hash(self, key: str) -> dict[bytes, bytes]:
        """The hash at ``key`` (``HGETALL`` on_key), as a dict."""
        flat = await self.on_key("HGETALL", key)
        if isinstance(flat, dict):
            return flat
        return dict(zip(flat[::2], flat[1::2], strict=True))

    async def close(self) -> None:
        await self.nodes.close()
