"""Commands packed by hiredis (C), not by redis-py's Python encoder.

Packing was most of the API's CPU time for batch enqueues (a 1000-task script call has
about 10,000 arguments; bench.bench_api), and a share of every worker's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import hiredis
from redis.exceptions import DataError

Arg = str | bytes | int | float


def pack(args: tuple[Arg, ...]) -> bytes:
    """One command of plain arguments (str, bytes, int, float), each one word."""
    return bytes(hiredis.pack_command(args))  # type: ignore[arg-type]


def pack_redis_py(args: tuple[Any, ...]) -> bytes:
    """One command as redis-py's callers give it, byte for byte what its encoder makes:
    a multi-word command name in one argument ("SCRIPT LOAD"), buffers as arguments."""
    if isinstance(args[0], str):
        args = tuple(args[0].encode().split()) + args[1:]
    elif b" " in args[0]:
        args = tuple(args[0].split()) + args[1:]
    try:
        return pack(args)
    except TypeError:
        pass  # hiredis takes str, bytes, int and float; redis-py also takes buffers
    args = tuple(bytes(a) if isinstance(a, bytearray | memoryview) else a for a in args)
    for arg in args:
        if isinstance(arg, bool) or not isinstance(arg, str | bytes | int | float):
            # redis-py's own words, so a caller sees the same error whichever packs
            raise DataError(
                f"Invalid input of type: '{type(arg).__name__}'. "
                "Convert to a bytes, string, int or float first."
            )
    return pack(args)


class HiredisPacking:
    """A mixin for redis-py connection classes: their commands packed by ``pack_redis_py``."""

    def pack_command(self, *args: Any) -> list[bytes]:
        return [pack_redis_py(args)]

    def pack_commands(self, commands: Iterable[Iterable[Any]]) -> list[bytes]:
        return [b"".join(pack_redis_py(tuple(args)) for args in commands)]
