"""Celery driver: ``app`` for ``celery -A bench.peers.celery_driver:app worker``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.peers import common


def _app() -> tuple[Any, Any]:
    from celery import Celery  # type: ignore[import-not-found]

    url, queue, _ = common.settings()
    app = Celery("bench", broker=url)
    app.conf.update(
        task_default_queue=queue,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )

    @app.task(name="job")  # type: ignore[untyped-decorator]
    def job(p: common.Payload) -> None:
        common.job_sync(p)

    return app, job


app, job = _app()  # read by the worker CLI at import


class Producer:
    batch = False

    async def enqueue_one(self, payload: common.Payload) -> None:
        job.delay(payload)

    async def enqueue_batch(self, payloads: Sequence[common.Payload]) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        app.close()


async def connect() -> common.Producer:
    return Producer()


if __name__ == "__main__":
    common.main(__spec__.name)
