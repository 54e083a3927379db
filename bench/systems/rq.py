"""RQ: one job at a time per worker. Its default ``Worker`` forks a work horse per job;
the tuned setting is ``SimpleWorker``, which runs jobs in the worker process itself.

Batch enqueue: ``Queue.enqueue_many`` (one pipeline). ``-q``: no line per job.
"""

from __future__ import annotations

from bench.systems.spec import Peer, Setting

_WORKER = ("{bin}/rq", "worker", "--url", "{url}", "-q", "{queue}")

PEER = Peer(
    name="rq",
    title="RQ",
    kind="python",
    distribution="rq",
    packages=("rq==3.0.0", "hiredis"),
    batch="Queue.enqueue_many",
    default=Setting("Worker, fork per job (default)", 1, _WORKER),
    tuned=Setting("SimpleWorker, no fork", 1, (*_WORKER, "-w", "rq.worker.SimpleWorker")),
)
