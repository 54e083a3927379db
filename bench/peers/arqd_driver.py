"""arqd driver: arqd's async Client, in arqd's own environment; its workers run
``arqd worker arqd.benchmark:registry`` (tasks ``incr`` and ``stamp``, the common job)."""

from __future__ import annotations

from collections.abc import Sequence

from arqd.client import Client
from arqd.core.settings import Settings
from arqd.core.task import NewTask
from arqd.store.connection import connect as connect_redis
from arqd.store.store import Store
from bench.peers import common


def _task(payload: common.Payload) -> str:
    return "stamp" if "t" in payload else "incr"


class Producer:
    batch = True

    def __init__(self, client: Client) -> None:
        self.client = client

    async def enqueue_one(self, payload: common.Payload) -> None:
        await self.client.enqueue(_task(payload), payload)

    async def enqueue_batch(self, payloads: Sequence[common.Payload]) -> None:
        await self.client.enqueue_many([NewTask(_task(p), p) for p in payloads])

    async def close(self) -> None:
        await self.client.close()


async def connect() -> common.Producer:
    url, _, _ = common.settings()
    settings = Settings(redis_url=url)
    return Producer(Client(Store(connect_redis(url), settings)))


if __name__ == "__main__":
    common.main(__spec__.name)
