"""Huey with ``RedisHuey`` (blocking pops): ``huey_consumer MODULE.huey -w N -k thread``.

Default: one worker thread. ``-q`` keeps the consumer from logging every task.
No batch enqueue.
"""

from __future__ import annotations

from bench.systems.spec import Peer, Setting

_WORKER = (
    "{bin}/huey_consumer", "bench.peers.huey_driver.huey", "-w", "{concurrency}", "-k",
    "thread", "-q",
)  # fmt: skip

PEER = Peer(
    name="huey",
    title="Huey",
    kind="python",
    distribution="huey",
    packages=("huey==3.5.4", "redis", "hiredis"),
    batch=None,
    default=Setting("1 thread (default)", 1, _WORKER),
    tuned=Setting("1 thread (the default)", 1, _WORKER),
)
