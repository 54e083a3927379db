"""The Lua scripts, read from ``lua/*.lua`` once, with the shared helpers prepended."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

NAMES = (
    "enqueue",
    "dequeue",
    "finish",
    "heartbeat",
    "cancel",
    "retry",
    "stats",
    "breaker",
    "ratelimit",
    "reset_breaker",
)


@cache
def source(name: str) -> str:
    """The full source of script ``name``: ``common.lua`` followed by the script."""
    lua = files("arqd.store") / "lua"
    return (lua / "common.lua").read_text() + "\n" + (lua / f"{name}.lua").read_text()
