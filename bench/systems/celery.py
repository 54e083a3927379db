"""Celery with the Redis broker (kombu), results ignored.

Celery's own default pool is prefork with one child per core, more than one process:
the bench's default is the ``solo`` pool (one process, one task at a time) and its tuned
setting the ``threads`` pool in that one process. ``-l WARNING``: no line per task.
No batch enqueue (a ``group`` sends its messages one by one).
"""

from __future__ import annotations

from bench.systems.spec import Peer, Setting

_WORKER = (
    "{bin}/celery", "-A", "bench.peers.celery_driver:app", "worker", "-l", "WARNING",
    "-Q", "{queue}",
)  # fmt: skip

PEER = Peer(
    name="celery",
    title="Celery",
    kind="python",
    distribution="celery",
    packages=("celery[redis]==5.7.0", "hiredis"),
    batch=None,
    default=Setting("solo pool", 1, (*_WORKER, "--pool", "solo")),
    tuned=Setting(
        "threads pool, 8 threads",
        8,
        (*_WORKER, "--pool", "threads", "--concurrency", "{concurrency}"),
    ),
)
