"""How the ``arqd`` command ends: its exit codes (``MEANINGS``), and one line on stderr
for each error, saying what to do.

With ``ARQD_LOG_LEVEL=debug`` the error's traceback comes first. ``arqd worker`` and
``arqd serve`` do not stop for a Redis they cannot reach: they say so once and start working
when it comes up; a ``REDIS_URL`` that is not a Redis URL stops them at once.
"""

from __future__ import annotations

import os
import traceback
from types import TracebackType

import typer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from arqd.core.errors import (
    ArqdError,
    ConfigurationError,
    EmbeddedServerError,
    InvalidTask,
)
from arqd.core.settings import Settings
from arqd.core.urls import redacted

OK = 0
NO = 1
USAGE = 2
UNREACHABLE = 3
WAIT_RAN_OUT = 4

MEANINGS = {
    OK: "done (enqueue --wait: the task succeeded)",
    NO: "enqueue --wait: the task failed or was cancelled; embedded status: not running; "
    "workflow: no such workflow (cancel: or it has ended)",
    USAGE: "bad usage or configuration: options, JSON, settings (REDIS_URL too), task "
    "names, modules",
    UNREACHABLE: "Redis cannot be reached, or the embedded server cannot start",
    WAIT_RAN_OUT: "enqueue --wait: the task had not finished when the wait ran out",
}
# The epilog of every command's --help (\b keeps click from rewrapping the lines).
HELP = "\b\nExit codes:\n" + "\n".join(f"  {code}  {text}" for code, text in MEANINGS.items())

# What redis-py raises when it cannot talk to the server (AuthenticationError is a
# ConnectionError too); the builtin ConnectionError when a socket fails outside redis-py.
UNREACHABLE_ERRORS = (RedisConnectionError, RedisTimeoutError, ConnectionError)


def fail(message: str, code: int) -> typer.Exit:
    """Say ``message`` on stderr, on one line; the Exit to raise with ``code``."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    return typer.Exit(code)


def settings() -> Settings:
    """The settings the environment gives; wrong ones end the command (USAGE)."""
    try:
        return Settings.from_env()
    except ConfigurationError as exc:
        raise fail(str(exc), USAGE) from None


def redis_url(settings: Settings) -> str:
    """REDIS_URL once checked as redis-py reads it, or the URL of the embedded server
    (started if needed). Raises ConfigurationError or EmbeddedServerError."""
    from redis.connection import parse_url

    from arqd.store.connection import resolve_url
    from arqd.store.topology import cluster_target, sentinel_target

    url = resolve_url(settings)
    try:
        if sentinel_target(url) is None and cluster_target(url) is None:
            parse_url(url)  # type: ignore[no-untyped-call]  # (redis-py leaves it untyped)
    except (ValueError, ConfigurationError) as exc:
        raise ConfigurationError(
            f"REDIS_URL={redacted(url)!r} is not a Redis URL: {str(exc).rstrip('.')}; "
            "write it as redis://[[user]:password@]host[:port][/db] (rediss:// for TLS, "
            "unix:///path/to/socket for a socket), or "
            "redis+sentinel://host:port[,host:port...]/service[/db] for a master behind "
            "Sentinel, or redis+cluster://host:port[,host:port...] for a Redis Cluster"
        ) from None
    return url


class CommandErrors:
    """Turns what a command may meet into one line and its exit code (see the module).

    ``with CommandErrors(settings) as errors:`` around the command's work; ``errors.url``,
    once set (``errors.connect()``), is named when Redis cannot be reached."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url: str | None = None

    def connect(self) -> str:
        """The URL to use (see ``redis_url``), remembered for the messages."""
        self.url = redis_url(self.settings)
        return self.url

    def __enter__(self) -> CommandErrors:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None or isinstance(exc, typer.Exit | KeyboardInterrupt):
            return
        found = self._leaf(exc)
        if found is None:
            return
        code, message = found
        if self.settings.log_level.lower() == "debug":
            traceback.print_exception(exc)
        raise fail(message, code) from None

    def describe(self, exc: BaseException) -> tuple[int, str] | None:
        """The exit code and message for ``exc``; None for an error this does not know."""
        where = "Redis" if self.url is None else f"Redis at {redacted(self.url)}"
        if isinstance(exc, UNREACHABLE_ERRORS):
            return UNREACHABLE, f"cannot reach {where}: {_reason(exc)}"
        if isinstance(exc, EmbeddedServerError):
            return UNREACHABLE, str(exc)
        if isinstance(exc, ConfigurationError | InvalidTask):
            return USAGE, str(exc)
        if isinstance(exc, ArqdError):
            return NO, str(exc)
        return None

    def _leaf(self, exc: BaseException) -> tuple[int, str] | None:
        if isinstance(exc, BaseExceptionGroup):  # from a TaskGroup: the first known cause
            for inner in exc.exceptions:
                found = self._leaf(inner)
                if found is not None:
                    return found
            return None
        return self.describe(exc)


def _reason(exc: BaseException) -> str:
    """The system's words for the socket error under ``exc`` (``Connection refused``,
    ``Name or service not known``), else redis-py's (``Timeout connecting to server``)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno and cause.errno > 0:
            return os.strerror(cause.errno)  # asyncio's own words name no reason
        if isinstance(cause, OSError) and cause.strerror:  # the resolver's (negative) codes
            return cause.strerror
        cause = cause.__cause__ or cause.__context__
    return " ".join(str(exc).split()).rstrip(".") or type(exc).__name__
