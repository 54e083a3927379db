"""Task types run by worker processes in test_resilience.py."""

import os
import time

from arqd.store.connection import connect_sync
from arqd.worker import Registry

registry = Registry()
_redis = connect_sync(os.environ["REDIS_URL"])  # one server or Sentinel, as the worker
MODE_KEY = os.environ["ARQD_KEY_PREFIX"] + ":test:mode"


@registry.task(rate_limit="10/s")
async def limited(payload: None) -> None:
    return None


@registry.task(concurrency=2)
def capped(payload: float) -> None:
    time.sleep(payload)


@registry.task()
async def free(payload: None) -> str:
    return "free"


@registry.task(max_retries=0)
def dependent(payload: None) -> str:
    if _redis.get(MODE_KEY) == b"down":
        raise ConnectionError("the dependency is down")
    return "served"
