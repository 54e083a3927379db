"""The store: everything arqd keeps in Redis, one object per concept over one client.

    store.tasks    enqueue, read, cancel, retry, count (tasks.py)
    store.leases   dequeue, heartbeat, finish: the worker's side (leases.py)
    store.events   the event streams, read from positions (events.py)
    store.workers  the worker registry (workers.py)
    store.limits   circuit breakers and rate limits (limits.py)

Every state change is one Lua script (scripts.py), run on one connection shared by every
coroutine (multiplex.py); every key is named in keys.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.asyncio.sentinel import SentinelConnectionPool

from arqd.core.settings import Settings
from arqd.store.events import Events
from arqd.store.keys import Keys
from arqd.store.leases import Leases
from arqd.store.limits import Limits
from arqd.store.scripts import Scripts
from arqd.store.tasks import Tasks
from arqd.store.workers import Workers


@dataclass(frozen=True, slots=True)
class Topology:
    """What arqd runs on: ``kind`` ("server" or "sentinel"), the server that takes the
    writes (``host:port``), its replicas in sync, and the replica acks each enqueue asks."""

    kind: str
    master: str
    replicas: int
    replica_acks: int


class Store:
    """Owns its Redis client: ``close()`` closes it."""

    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self.keys = keys = Keys(settings.key_prefix)
        self.scripts = Scripts(redis, settings.replica_acks, settings.replica_ack_timeout)
        self.tasks = Tasks(self.scripts, keys, settings)
        self.leases = Leases(self.scripts, keys, settings)
        self.events = Events(redis, keys)
        self.workers = Workers(redis, keys, settings.lease_timeout)
        self.limits = Limits(self.scripts, keys, settings)

    async def ping(self) -> None:
        """Raises redis-py's ConnectionError or TimeoutError when Redis does not answer."""
        await self.redis.ping()

    async def topology(self) -> Topology:
        """The topology now, with the master's count of replicas in sync."""
        info = await self.redis.info("replication")
        online = sum(
            1
            for name, value in info.items()
            if name.startswith("slave")
            and isinstance(value, dict)
            and value.get("state") == "online"
        )
        sentinel = isinstance(self.redis.connection_pool, SentinelConnectionPool)
        master = await self.node(self.settings.queue)
        return Topology(
            "sentinel" if sentinel else "server", master, online, self.settings.replica_acks
        )

    async def node(self, queue: str) -> str:
        """``host:port`` (or socket path) of the server that holds ``queue``'s keys: the
        one server, or behind Sentinel the master this client writes to (asking the
        sentinels only before it has connected)."""
        pool = self.redis.connection_pool
        if isinstance(pool, SentinelConnectionPool):
            host, port = pool.master_address or await pool.get_master_address()  # type: ignore[no-untyped-call]
            return f"{host}:{port}"
        options = pool.connection_kwargs
        if "path" in options:
            return str(options["path"])
        return f"{options.get('host', 'localhost')}:{options.get('port', 6379)}"

    async def close(self) -> None:
        """Close the shared connection and the client's pool."""
        await self.scripts.close()
        await self.redis.aclose()
