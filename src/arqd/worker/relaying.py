"""A worker's part in relaying workflows across queues (``arqd.store.relay``).

Right after this worker's finish wrote notices (members of other queues' workflows that
ended), or started steps whose members went to an outbox, it relays them: the workflows
move on one or two round trips later. Its
scheduler's poll says which of its queues hold notices or outboxes (left by a crash, a
lapsed lease, an expiry, a cancel or retry whose caller did not relay): those are swept,
at most once a second. One relay runs at a time, and what was asked meanwhile is relayed
together after it. A relay that fails is left to the next sweep: every step is safe to
redo.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence

from redis.exceptions import RedisError

from arqd.store.leases import Finished
from arqd.worker.storage import WorkerStore

log = logging.getLogger("arqd.relay")


class Relayer:
    """Relays what it is told of until ``close``."""

    def __init__(self, store: WorkerStore) -> None:
        self.store = store
        self._members: dict[str, set[str]] = defaultdict(set)
        self._outboxes: set[tuple[str, str]] = set()
        self._sweeps: set[str] = set()
        self._ready = asyncio.Event()
        self._closed = False

    def finished(self, queue: str, finished: Finished) -> None:
        """What a finish on ``queue`` left: notices of its members, outboxes of its
        workflows."""
        self._members[queue].update(finished.noticed)
        self._outboxes.update((queue, wid) for wid in finished.outboxes)
        self._ready.set()

    def sweep(self, queues: Sequence[str]) -> None:
        """Queues whose notices or outboxes hold something (the schedule poll's answer)."""
        self._sweeps.update(queues)
        if queues:
            self._ready.set()

    def close(self) -> None:
        self._closed = True
        self._ready.set()

    async def run(self) -> None:
        while not self._closed:
            await self._ready.wait()
            self._ready.clear()
            try:
                await self.flush()
            except (RedisError, OSError) as exc:
                log.warning("relay: Redis failed (%s); the next sweep relays it", exc)
            except Exception:  # a relay is redone by the sweep: it must not stop the worker
                log.exception("relay failed; the next sweep relays it")

    async def flush(self) -> None:
        """Relay what was asked so far."""
        members, self._members = self._members, defaultdict(set)
        outboxes, self._outboxes = self._outboxes, set()
        sweeps, self._sweeps = self._sweeps, set()
        for queue, wid in sorted(outboxes):
            await self.store.relay_outbox(queue, wid)
        for queue, ids in members.items():
            await self.store.relay_notices(queue, sorted(ids))
        for queue in sorted(sweeps):
            await self.store.relay_sweep(queue)
