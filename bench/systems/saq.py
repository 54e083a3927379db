"""SAQ: asyncio, Lua scripts; its worker takes a settings dict (``saq MODULE.settings``).

No batch enqueue (``Queue.batch`` only groups enqueues for cancellation). The worker's
default logging (``-v`` not given) is ERROR: no line per task.
"""

from __future__ import annotations

from bench.systems.spec import Peer, Setting

_WORKER = ("{bin}/saq", "bench.peers.saq_driver.settings", "--workers", "1")

PEER = Peer(
    name="saq",
    title="SAQ",
    kind="python",
    distribution="saq",
    packages=("saq==0.26.4", "typing_extensions", "redis", "hiredis"),
    batch=None,
    default=Setting("concurrency 10 (default)", 10, _WORKER),
    tuned=Setting("concurrency 20", 20, _WORKER),
)
