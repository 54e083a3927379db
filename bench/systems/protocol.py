"""The queue systems the in-process benchmark (``python -m bench.core``) drives.

A ``System`` is used from the bench's own interpreter, so only arqd is one: peers never
import into arqd's environment. They are described by a ``Peer`` (``bench.systems.spec``)
and driven through a script run by their own virtual environment's Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bench.model import Payload


class Producer(Protocol):
    async def enqueue_one(self, task: str, payload: Payload) -> None: ...

    async def enqueue_batch(self, task: str, payloads: Sequence[Payload]) -> None: ...


class System(Producer, Protocol):
    """One queue system in a namespace of its own on the bench's Redis."""

    name: str

    def worker(self, concurrency: int, quiet: bool = True) -> tuple[list[str], dict[str, str]]:
        """The command and environment of one worker process serving this namespace;
        ``quiet``: no log line per task (the bench's standard), else the system's defaults."""
        ...

    async def worker_ready(self) -> bool: ...

    async def pending(self) -> int:
        """Tasks enqueued and not finished yet."""
        ...

    async def failed(self) -> int: ...

    async def busy_seconds(self) -> float | None:
        """First start to last finish of the tasks enqueued here; None: use the wall clock."""
        ...

    async def memory_breakdown(self) -> dict[str, float]:
        """Bytes of each structure per queued task, as far as the system can tell."""
        ...

    def scratch_key(self, name: str) -> str:
        """A key in this namespace for the bench's own data (counters, latency samples)."""
        ...

    async def close(self) -> None:
        """Delete everything in the namespace and disconnect."""
        ...
