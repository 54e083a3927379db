"""RQ driver: the job ``bench.peers.rq_driver.job``, which ``rq worker`` imports by name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.peers import common

JOB = "bench.peers.rq_driver.job"


def job(p: common.Payload) -> None:
    common.job_sync(p)


class Producer:
    batch = True

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    async def enqueue_one(self, payload: common.Payload) -> None:
        self.queue.enqueue(JOB, payload)

    async def enqueue_batch(self, payloads: Sequence[common.Payload]) -> None:
        self.queue.enqueue_many([self.queue.prepare_data(JOB, (p,)) for p in payloads])

    async def close(self) -> None:
        self.queue.connection.close()


async def connect() -> common.Producer:
    from redis import Redis
    from rq import Queue  # type: ignore[import-not-found]

    url, queue, _ = common.settings()
    return Producer(Queue(queue, connection=Redis.from_url(url)))


if __name__ == "__main__":
    common.main(__spec__.name)
