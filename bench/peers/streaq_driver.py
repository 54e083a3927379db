"""streaq driver: ``worker`` for ``streaq run bench.peers.streaq_driver:worker``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.peers import common


def _worker() -> tuple[Any, Any]:
    from streaq import Worker  # type: ignore[import-not-found]

    url, queue, concurrency = common.settings()
    worker = Worker(redis_url=url, queue_name=queue, concurrency=concurrency)

    @worker.task(name="job", silent=True)  # type: ignore[untyped-decorator]
    async def job(p: common.Payload) -> None:
        await common.job_async(p)

    return worker, job


worker, job = _worker()  # read by the worker CLI at import


class Producer:
    batch = True

    async def enqueue_one(self, payload: common.Payload) -> None:
        await job.enqueue(payload)

    async def enqueue_batch(self, payloads: Sequence[common.Payload]) -> None:
        await worker.enqueue_many([job.enqueue(p) for p in payloads])

    async def close(self) -> None:
        await worker.__aexit__(None, None, None)


async def connect() -> common.Producer:
    await worker.__aenter__()
    return Producer()


if __name__ == "__main__":
    common.main(__spec__.name)
