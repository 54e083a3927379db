"""Every system the comparison knows, in report order: arqd first, then its peers."""

from __future__ import annotations

from bench.systems import arq, arqd, bullmq, celery, dramatiq, huey, rq, saq, streaq, taskiq
from bench.systems.spec import Peer

ALL: tuple[Peer, ...] = tuple(
    module.PEER for module in (arqd, saq, arq, taskiq, streaq, dramatiq, huey, rq, celery, bullmq)
)
BY_NAME = {peer.name: peer for peer in ALL}
