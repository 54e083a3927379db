"""Dramatiq driver: the module ``dramatiq bench.peers.dramatiq_driver`` loads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.peers import common


def _actor() -> Any:
    import dramatiq  # type: ignore[import-not-found]
    from dramatiq.brokers.redis import RedisBroker  # type: ignore[import-not-found]

    url, queue, _ = common.settings()
    dramatiq.set_broker(RedisBroker(url=url))

    @dramatiq.actor(actor_name="job", queue_name=queue)  # type: ignore[untyped-decorator]
    def job(p: common.Payload) -> None:
        common.job_sync(p)

    return job


job = _actor()  # declared at import, where the worker CLI looks for actors


class Producer:
    batch = False

    async def enqueue_one(self, payload: common.Payload) -> None:
        job.send(payload)

    async def enqueue_batch(self, payloads: Sequence[common.Payload]) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        job.broker.close()


async def connect() -> common.Producer:
    return Producer()


if __name__ == "__main__":
    common.main(__spec__.name)
