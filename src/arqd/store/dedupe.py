"""A task's deduplication as the enqueue script takes it: one option pair, ``dd`` and
``<mode>:<ms>:<key>`` (see ``dedupe`` in ``lua/common.lua``), so an enqueue that uses
none of it costs the script nothing.

The ms are the window of throttle and debounce; for the until_* modes, how long the key
outlives the latest enqueue that used it (and the task's delay), the idempotency TTL: a
key whose task expired, or that was lost, blocks nothing, so the TTL only bounds memory.
"""

from __future__ import annotations

from arqd.core.dedupe import Dedupe, DedupeMode
from arqd.core.errors import InvalidTask
from arqd.core.task import NewTask


def dedupe_option(task: NewTask, keep_ms: int) -> list[str | int]:
    """The ``dd`` pair of ``task`` (none without dedupe); ``keep_ms``: the until_* modes'
    key TTL."""
    dedupe = task.dedupe
    if dedupe is None:
        return []
    if not isinstance(dedupe, Dedupe):
        raise InvalidTask(f"dedupe must be an arqd.core.dedupe.Dedupe, got {dedupe!r}")
    if dedupe.mode is DedupeMode.DEBOUNCE and (task.delay or task.eta is not None):
        raise InvalidTask(
            "a debounced task is due a window after its last enqueue: no delay or eta"
        )
    ms = dedupe.window_ms if dedupe.mode.windowed else keep_ms
    return ["dd", f"{dedupe.mode.value}:{ms}:{dedupe.key}"]
