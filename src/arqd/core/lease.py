"""One attempt of a task, as a worker holds it, and how the attempt ended."""

from __future__ import annotations

from dataclasses import dataclass

# Not frozen: one of each is made per attempt, and a frozen dataclass's ``__init__`` costs
# two to three times as much (a tenth of a no-op task's worker time; bench.core).


@dataclass(slots=True)
class Lease:
    """One attempt of a task, leased to a worker. ``token`` fences it: an answer or a
    renewal carrying an older token than the task's is refused."""

    queue: str
    id: str
    token: bytes
    type: str
    payload: bytes
    attempt: int
    max_retries: int | None
    timeout_ms: int | None
    trace: bytes | None
    waited_ms: int = 0  # how long it was ready before this attempt started


@dataclass(slots=True)
class Answer:
    """How one attempt ended, for the finish script."""

    lease: Lease
    outcome: str  # succeeded | failed | retry | cancelled | returned
    value: bytes = b""
    delay_ms: int = 0
    breaker: str = ""  # the type's breaker: "" (none), ok, fail or neutral
    breaker_threshold: int = 0
    breaker_open_ms: int = 0
