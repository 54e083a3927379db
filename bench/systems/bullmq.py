"""BullMQ for Node (npm ``bullmq``, in ``bench/peers_node``): a ``Worker`` with
``concurrency`` in one Node process. Batch enqueue: ``Queue.addBulk``. Completed jobs
are kept, as by default."""

from __future__ import annotations

from bench.systems.spec import Peer, Setting

_WORKER = ("node", "bench/peers_node/worker.mjs")

PEER = Peer(
    name="bullmq",
    title="BullMQ (Node)",
    kind="node",
    distribution="bullmq",
    packages=(),
    batch="Queue.addBulk",
    default=Setting("concurrency 1 (default)", 1, _WORKER),
    tuned=Setting("concurrency 200", 200, _WORKER),
)
