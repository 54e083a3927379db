"""Huey driver: ``huey`` for ``huey_consumer bench.peers.huey_driver.huey``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.peers import common


def _huey() -> tuple[Any, Any]:
    from huey import RedisHuey  # type: ignore[import-not-found]

    url, queue, _ = common.settings()
    huey = RedisHuey(queue, url=url)

    @huey.task(name="job")  # type: ignore[untyped-decorator]
    def job(p: common.Payload) -> None:
        common.job_sync(p)

    return huey, job


huey, job = _huey()  # read by the consumer at import


class Producer:
    batch = False

    async def enqueue_one(self, payload: common.Payload) -> None:
        job(payload)

    async def enqueue_batch(self, payloads: Sequence[common.Payload]) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        huey.storage.conn.close()


async def connect() -> common.Producer:
    return Producer()


if __name__ == "__main__":
    common.main(__spec__.name)
