"""streaq: asyncio on Redis streams, through coredis; ``streaq run MODULE:worker``.

Batch enqueue: ``Worker.enqueue_many`` (one pipeline). Tasks are declared ``silent`` so
the worker logs no line per task, its own switch for that.
"""

from __future__ import annotations

from bench.systems.spec import Peer, Setting

_WORKER = ("{bin}/streaq", "run", "bench.peers.streaq_driver:worker", "--workers", "1")

PEER = Peer(
    name="streaq",
    title="streaq",
    kind="python",
    distribution="streaq",
    packages=("streaq==7.2.0", "redis", "hiredis"),
    batch="Worker.enqueue_many",
    default=Setting("concurrency 16 (default)", 16, _WORKER),
    tuned=Setting("concurrency 16 (the default)", 16, _WORKER),
)
