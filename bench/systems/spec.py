"""How the side-by-side comparison (``python -m bench.compare``) installs and runs a system.

A ``Peer`` is data only: what to install, how to run its driver (the producer side, which
prints one JSON line) and its worker (one process, default and tuned settings). Commands
are templates: ``{python}`` and ``{bin}`` are the system's own interpreter and scripts
folder, ``{url}`` the bench's Redis, ``{queue}`` the queue name, ``{concurrency}`` the
setting's concurrency. Tuned settings are the best of ``python -m bench.sweep`` on the
2-core bench machine (several are the library's default). The worker also finds them in
``BENCH_REDIS_URL``, ``BENCH_QUEUE`` and ``BENCH_CONCURRENCY``, for libraries configured
in code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["arqd", "python", "node"]


@dataclass(frozen=True)
class Setting:
    """One worker configuration: always one worker process."""

    label: str
    concurrency: int
    command: tuple[str, ...]


@dataclass(frozen=True)
class Peer:
    name: str  # as on the command line: saq, arq, ...
    title: str  # as in the report
    kind: Kind
    distribution: str  # the package whose version the report gives
    packages: tuple[str, ...]  # what `python -m bench.peers install` puts in its environment
    batch: str | None  # the batch enqueue API, None: there is none
    default: Setting
    tuned: Setting
    notes: str = ""

    @property
    def driver(self) -> tuple[str, ...]:
        if self.kind == "node":
            return ("node", "bench/peers_node/driver.mjs")
        return ("{python}", "-m", f"bench.peers.{self.name}_driver")
