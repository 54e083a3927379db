"""SAQ driver: ``settings`` for ``saq bench.peers.saq_driver.settings``, and a producer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.peers import common


def _settings() -> dict[str, Any]:
    from saq import Queue  # type: ignore[import-not-found]

    url, queue, concurrency = common.settings()

    async def job(ctx: Any, *, p: common.Payload) -> None:
        await common.job_async(p)

    return {"queue": Queue.from_url(url, name=queue), "functions": [("job", job)],
            "concurrency": concurrency}  # fmt: skip


settings = _settings()  # read by the worker CLI at import


class Producer:
    batch = False

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    async def enqueue_one(self, payload: common.Payload) -> None:
        await self.queue.enqueue("job", p=payload)

    async def enqueue_batch(self, payloads: Sequence[common.Payload]) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        await self.queue.disconnect()


async def connect() -> common.Producer:
    await settings["queue"].connect()
    return Producer(settings["queue"])


if __name__ == "__main__":
    common.main(__spec__.name)
