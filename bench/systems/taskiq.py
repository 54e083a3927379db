"""taskiq with taskiq-redis's ``ListQueueBroker`` (LPUSH/BRPOP, acknowledged on receipt).

The fastest of taskiq-redis's brokers, as the issue's figures used; ``RedisStreamBroker``
acknowledges after execution. No batch enqueue. ``taskiq worker`` starts 2 processes by
default: the bench passes ``--workers 1``. Default ``--max-async-tasks`` is 100.
"""

from __future__ import annotations

from bench.systems.spec import Peer, Setting

_WORKER = (
    "{bin}/taskiq", "worker", "bench.peers.taskiq_driver:broker", "--workers", "1",
    "--log-level", "WARNING", "--max-async-tasks", "{concurrency}",
)  # fmt: skip

PEER = Peer(
    name="taskiq",
    title="taskiq",
    kind="python",
    distribution="taskiq",
    packages=("taskiq==0.13.0", "taskiq-redis==1.2.4", "hiredis"),
    batch=None,
    default=Setting("max-async-tasks 100 (default)", 100, _WORKER),
    tuned=Setting("max-async-tasks 100 (the default)", 100, _WORKER),
)
