"""arq: asyncio; its worker takes a settings class (``arq MODULE.WorkerSettings``).

No batch enqueue. Idle workers poll every ``poll_delay`` (0.5 s by default), which bounds
its latency; the bench keeps the default. Its CLI logs two lines per job at INFO: the
driver filters records below WARNING from the ``arq.worker`` logger.
"""

from __future__ import annotations

from bench.systems.spec import Peer, Setting

_WORKER = ("{bin}/arq", "bench.peers.arq_driver.WorkerSettings")

PEER = Peer(
    name="arq",
    title="arq",
    kind="python",
    distribution="arq",
    packages=("arq==0.28.0", "hiredis"),
    batch=None,
    default=Setting("max_jobs 10 (default)", 10, _WORKER),
    tuned=Setting("max_jobs 100", 100, _WORKER),
)
