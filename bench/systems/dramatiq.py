"""Dramatiq with its RedisBroker: threads in forked worker processes.

``dramatiq MODULE --processes 1 --threads N``: a supervisor process forks the one worker
process (the peak RSS is the larger of the two). Defaults are 2 processes (one per core
here) and 8 threads; the bench keeps one process. No batch enqueue.
"""

from __future__ import annotations

from bench.systems.spec import Peer, Setting

_WORKER = (
    "{bin}/dramatiq", "bench.peers.dramatiq_driver", "--processes", "1",
    "--threads", "{concurrency}",
)  # fmt: skip

PEER = Peer(
    name="dramatiq",
    title="Dramatiq",
    kind="python",
    distribution="dramatiq",
    packages=("dramatiq[redis]==2.2.1", "hiredis"),
    batch=None,
    default=Setting("8 threads (default)", 8, _WORKER),
    tuned=Setting("8 threads (the default)", 8, _WORKER),
)
