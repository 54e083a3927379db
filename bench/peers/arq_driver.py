"""arq driver: ``WorkerSettings`` for ``arq bench.peers.arq_driver.WorkerSettings``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from bench.peers import common


def _worker_settings() -> Any:
    from arq.connections import RedisSettings  # type: ignore[import-not-found]
    from arq.worker import func  # type: ignore[import-not-found]

    url, queue, concurrency = common.settings()

    async def job(ctx: Any, p: common.Payload) -> None:
        await common.job_async(p)

    common.quiet("arq.worker")  # two INFO lines per job otherwise

    class Settings:
        functions: ClassVar[list[Any]] = [func(job, name="job")]
        redis_settings = RedisSettings.from_dsn(url)
        queue_name = queue
        max_jobs = concurrency

    return Settings


WorkerSettings = _worker_settings()  # read by the worker CLI at import


class Producer:
    batch = False

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def enqueue_one(self, payload: common.Payload) -> None:
        await self.pool.enqueue_job("job", payload, _queue_name=WorkerSettings.queue_name)

    async def enqueue_batch(self, payloads: Sequence[common.Payload]) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        await self.pool.aclose()


async def connect() -> common.Producer:
    from arq import create_pool  # type: ignore[import-not-found]

    return Producer(await create_pool(WorkerSettings.redis_settings))


if __name__ == "__main__":
    common.main(__spec__.name)
