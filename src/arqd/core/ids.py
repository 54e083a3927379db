"""Task ids: random, URL-safe, 16 characters (96 bits from the OS's random source)."""

from __future__ import annotations

import base64
import os
import secrets


def task_ids(count: int) -> list[str]:
    """``count`` ids from one read of the random source: 12 bytes encode to exactly 16
    base64 characters, so the encoding of the whole run splits into the ids."""
    encoded = base64.urlsafe_b64encode(secrets.token_bytes(12 * count)).decode()
    return [encoded[i : i + 16] for i in range(0, 16 * count, 16)]


_spare_ids: list[str] = []  # drawn ahead; list.pop and extend are atomic, so threads share it
os.register_at_fork(after_in_child=_spare_ids.clear)  # a child must not reuse its parent's


def new_task_id() -> str:
    """One id like ``task_ids``'s, drawn 256 at a time: each read of the random source is
    a system call, which is most of what making one id alone costs (bench.core)."""
    while True:
        try:
            return _spare_ids.pop()
        except IndexError:
            _spare_ids.extend(task_ids(256))
