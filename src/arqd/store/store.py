"""The store: everything arqd keeps in Redis, one object per concept over one client.

    store.tasks    enqueue, read, cancel, retry, count (tasks.py)
    store.leases   dequeue, heartbeat, finish: the worker's side (leases.py)
    store.events   the event streams, read from positions (events.py)
    store.workers  the worker registry (workers.py)
    store.limits   circuit breakers and rate limits (limits.py)
    store.history  tasks finished per minute of each queue (history.py)
    store.schedules  schedules: stored, polled and fired (schedules.py)
    store.control  pausing and resuming queues and task types (control.py)
    store.reports  running attempts' progress and log lines (reports.py)
    store.workflows  chains and groups of tasks: started, counted, read (workflows.py)

Every state change is one Lua script (scripts.py), run on one connection shared by every
coroutine (multiplex.py); every key is named in keys.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from redis.asyncio import RedisCluster
from redis.asyncio.sentinel import SentinelConnectionPool

from arqd.core.settings import Settings
from arqd.store.connection import RedisClient
from arqd.store.control import Control
from arqd.store.events import Events
from arqd.store.history import History
from arqd.store.keys import Keys
from arqd.store.leases import Leases
from arqd.store.limits import Limits
from arqd.store.nodes import Node, Nodes
from arqd.store.relay import Relay
from arqd.store.reports import Reports
from arqd.store.schedules import Schedules
from arqd.store.scripts import Scripts
from arqd.store.tasks import Tasks
from arqd.store.workers import Workers
from arqd.store.workflows import Workflows


@dataclass(frozen=True, slots=True)
class Topology:
    """What arqd runs on: ``kind`` ("server", "sentinel" or "cluster"), the servers that
    take the writes (``host:port``; a cluster's masters, comma-separated), the replicas in
    sync (of a cluster's master with the fewest), and the replica acks each enqueue asks."""

    kind: str
    master: str
    replicas: int
    replica_acks: int


@dataclass(frozen=True, slots=True)
class Memory:
    """One master's memory: bytes in use (``used_memory``), its limit (``maxmemory``; None
    when it has none) and what Redis does at the limit (``maxmemory-policy``)."""

    master: str
    used: int
    limit: int | None
    policy: str


class Store:
    """Owns its Redis client: ``close()`` closes it."""

    def __init__(self, redis: RedisClient, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self.keys = keys = Keys(settings.key_prefix)
        self.nodes = nodes = Nodes(redis)
        self.scripts = Scripts(nodes, settings.replica_acks, settings.replica_ack_timeout)
        self.tasks = Tasks(self.scripts, keys, settings)
        self.leases = Leases(self.scripts, keys, settings)
        self.events = Events(nodes, keys)
        self.workers = Workers(nodes, keys, settings.lease_timeout)
        self.limits = Limits(self.scripts, keys, settings)
        self.history = History(nodes, keys)
        self.schedules = Schedules(self.scripts, keys, settings)
        self.control = Control(self.scripts, keys, settings)
        self.reports = Reports(self.scripts, keys, settings, self.tasks)
        self.workflows = Workflows(self.scripts, keys, settings)
        self.relay = Relay(self.scripts, keys, settings, self.tasks)

    async def ping(self) -> None:
        """Raises redis-py's ConnectionError or TimeoutError when Redis does not answer."""
        await self.redis.ping()

    async def topology(self) -> Topology:
        """The topology now, with the count of replicas in sync."""
        masters = await self.nodes.masters()
        online = await asyncio.gather(*(_replicas_online(node) for node in masters))
        acks = self.settings.replica_acks
        if self.nodes.cluster is not None:
            addresses = ", ".join(sorted(node.address for node in masters))
            return Topology("cluster", addresses, min(online), acks)
        assert not isinstance(self.redis, RedisCluster)
        sentinel = isinstance(self.redis.connection_pool, SentinelConnectionPool)
        master = await self.node(self.settings.queue)
        return Topology("sentinel" if sentinel else "server", master, online[0], acks)

    async def memory(self) -> list[Memory]:
        """The memory of each master (one ``INFO memory`` each, at once)."""
        masters = await self.nodes.masters()
        infos = await asyncio.gather(*(node.redis.info("memory") for node in masters))
        if self.nodes.cluster is None:
            addresses = [await self.node(self.settings.queue)]
        else:
            addresses = [node.address for node in masters]
        found = [_memory(address, info) for address, info in zip(addresses, infos, strict=True)]
        return sorted(found, key=lambda memory: memory.master)

    async def node(self, queue: str) -> str:
        """``host:port`` (or socket path) of the server that holds ``queue``'s keys: the
        one server, behind Sentinel the master this client writes to (asking the
        sentinels only before it has connected), or the cluster's master of its slot."""
        if self.nodes.cluster is not None:
            return (await self.nodes.of(self.keys.queue(queue))).address
        assert not isinstance(self.redis, RedisCluster)
        pool = self.redis.connection_pool
        if isinstance(pool, SentinelConnectionPool):
            host, port = pool.master_address or await pool.get_master_address()  # type: ignore[no-untyped-call]
            return f"{host}:{port}"
        options = pool.connection_kwargs
        if "path" in options:
            return str(options["path"])
        return f"{options.get('host', 'localhost')}:{options.get('port', 6379)}"

    async def close(self) -> None:
        """Close the shared connections and the client's pool."""
        await self.scripts.close()
        await self.redis.aclose()


async def _replicas_online(node: Node) -> int:
    info = await node.redis.info("replication")
    return sum(
        1
        for name, value in info.items()
        if name.startswith("slave") and isinstance(value, dict) and value.get("state") == "online"
    )


def _memory(master: str, info: dict[str, Any]) -> Memory:
    limit = int(info.get("maxmemory", 0))
    return Memory(
        master, int(info["used_memory"]), limit or None, str(info.get("maxmemory_policy", ""))
    )
