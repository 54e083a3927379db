"""The servers arqd writes to, found by a key's slot: the one server (or the master behind
Sentinel), or on a Redis Cluster the master that holds the slot.

Each ``Node`` has a client of its own and the one shared connection its scripts go over
(``multiplex``), so on a cluster concurrent scripts bound for the same master share one
connection and one write, as on one server: a cluster costs no extra round trip per task.

On a cluster a call to a node that no longer holds its key's slot (``MOVED``, after a
failover or a resharding), to a slot on its way to another node (``ASK``, ``TRYAGAIN``),
or to a master that went away, reads the slot table again and is sent again (as often as
the client's profile retries); every arqd script is safe to send twice (see ``scripts``).
A slot no master serves yet is a ConnectionError, as a server that does not answer is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    RedisClusterException,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from arqd.store.connection import RedisClient, as_unreachable, node_client, profile_of
from arqd.store.multiplex import Multiplexer

T = TypeVar("T")

# Resends on a cluster after a redirection or a lost master, with the wait before each,
# as many as the client's profile allows retries (a worker: 3, an HTTP request: 1). A
# manual failover or a resharding step is over by then; for a master lost until its
# replica is promoted, the worker's own loop waits on and the API answers 503.
RESEND_AFTER = (0.0, 0.05, 0.1, 0.2, 0.4, 0.8)
MOVING = (MovedError, AskError, TryAgainError, ClusterDownError, RedisClusterException)
LOST = (RedisConnectionError, RedisTimeoutError)


@lru_cache(maxsize=65536)
def slot_of(key: str) -> int:
    """The cluster hash slot of ``key`` (its ``{tag}``, when it has one)."""
    return int(key_slot(key.encode()))


class Node:
    """One server that takes writes: its client, and the connection its scripts share."""

    def __init__(self, redis: aioredis.Redis, address: str, owned: bool) -> None:
        self.redis = redis
        self.address = address
        self.multiplexer = Multiplexer(redis)
        self._owned = owned  # the client is this node's own (a cluster's master)

    async def call(self, *args: Any) -> Any:
        """One command on the shared connection, or redis-py's path if that broke (it
        reconnects and resends as the pool's retry policy says)."""
        try:
            return await self.multiplexer.call(*args)
        except RedisConnectionError:
            return await self.redis.execute_command(*args)  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        await self.multiplexer.close()
        if self._owned:
            await self.redis.aclose()


class Nodes:
    """The node of each key; ``redis`` sends plain commands to the right one by itself
    (redis-py's cluster client routes them)."""

    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis
        self.cluster: aioredis.RedisCluster | None = None
        self.single: Node | None = None
        self.resends = RESEND_AFTER[: profile_of(redis).retries]
        if isinstance(redis, aioredis.RedisCluster):
            self.cluster = redis
        else:
            self.single = Node(redis, "", owned=False)
        self._by_name: dict[str, Node] = {}
        self._by_slot: dict[int, Node] = {}  # the slots looked up since the last refresh

    async def of(self, key: str) -> Node:
        """The node that holds ``key``."""
        if self.single is not None:
            return self.single
        return await self.of_slot(slot_of(key))

    async def of_slot(self, slot: int) -> Node:
        cluster = self.cluster
        assert cluster is not None
        await cluster.initialize()  # at once once the slot table is read
        try:
            primary = cluster.nodes_manager.get_node_from_slot(slot)
        except RedisClusterException as exc:  # no master serves it yet: a failover
            raise as_unreachable(exc) from exc
        node = self._by_name.get(primary.name)
        if node is None:
            node = Node(node_client(cluster, primary), primary.name, owned=True)
            self._by_name[primary.name] = node
        self._by_slot[slot] = node
        return node

    async def masters(self) -> list[Node]:
        """Every node that takes writes (the one server, or each master of the cluster)."""
        if self.single is not None:
            return [self.single]
        cluster = self.cluster
        assert cluster is not None
        await cluster.initialize()
        slots = {
            primary.name: slot
            for slot, holders in cluster.nodes_manager.slots_cache.items()
            for primary in holders[:1]
        }
        return [await self.of_slot(slot) for slot in sorted(slots.values())]

    async def call(self, key: str, *args: Any) -> Any:
        """One command on the shared connection of ``key``'s node."""
        if self.single is not None:
            return await self.single.call(*args)
        node = self._by_slot.get(slot_of(key))
        if node is not None:  # the hot path: no lookup but a dict's
            try:
                return await node.call(*args)
            except (*MOVING, *LOST):
                await self.refresh()
        return await self.routed(key, lambda node: node.call(*args))

    async def routed(self, key: str, action: Callable[[Node], Awaitable[T]]) -> T:
        """``action`` on ``key``'s node; on a cluster, sent again to the slot's holder
        after a redirection or a lost master (see the module's docstring)."""
        if self.single is not None:
            return await action(self.single)
        slot = slot_of(key)
        for wait in self.resends:
            try:
                return await action(await self.of_slot(slot))
            except (*MOVING, *LOST):
                if wait:
                    await asyncio.sleep(wait)
                await self.refresh()
        return await action(await self.of_slot(slot))

    async def refresh(self) -> None:
        """Read the slot table again (after a failover or a resharding); a node that
        holds no slot any more is closed."""
        cluster = self.cluster
        if cluster is None:
            return
        self._by_slot.clear()
        try:
            await cluster.nodes_manager.initialize()
        except (*MOVING, *LOST):
            return  # no node answers yet: the next call tries again
        primaries = {
            holders[0].name for holders in cluster.nodes_manager.slots_cache.values() if holders
        }
        for name in [n for n in self._by_name if n not in primaries]:
            await self._by_name.pop(name).close()

    async def close(self) -> None:
        """Close each node's connection (and a cluster's node clients)."""
        if self.single is not None:
            await self.single.close()
        nodes, self._by_name = list(self._by_name.values()), {}
        self._by_slot.clear()
        for node in nodes:
            await node.close()
