"""taskiq driver: ``broker`` for ``taskiq worker bench.peers.taskiq_driver:broker``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.peers import common


def _broker() -> tuple[Any, Any]:
    from taskiq_redis import ListQueueBroker  # type: ignore[import-not-found]

    url, queue, _ = common.settings()
    broker = ListQueueBroker(url, queue_name=queue)

    @broker.task(task_name="job")  # type: ignore[untyped-decorator]
    async def job(p: common.Payload) -> None:
        await common.job_async(p)

    return broker, job


broker, job = _broker()  # read by the worker CLI at import


class Producer:
    batch = False

    async def enqueue_one(self, payload: common.Payload) -> None:
        await job.kiq(payload)

    async def enqueue_batch(self, payloads: Sequence[common.Payload]) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        await broker.shutdown()


async def connect() -> common.Producer:
    await broker.startup()
    return Producer()


if __name__ == "__main__":
    common.main(__spec__.name)
