"""What ``REDIS_URL`` names: one Redis server, or a Sentinel-watched master.

- ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS), ``unix:///path``:
  one server, as redis-py reads them.
- ``redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db]``, and
  ``rediss+sentinel://`` for TLS to Redis: the master of ``service`` as the listed
  sentinels name it (default port 26379), followed through failovers. The user and
  password are the master's; ``?sentinel_username=...&sentinel_password=...`` are the
  sentinels' own, when they require one. This is the form redis-py, Celery and Kombu use.

A URL that is neither is refused with a message naming what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from arqd.core.errors import ConfigurationError

SENTINEL_SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True}  # -> TLS to Redis
SERVER_SCHEMES = ("redis", "rediss", "unix")
SENTINEL_PORT = 26379
SENTINEL_OPTIONS = frozenset({"sentinel_username", "sentinel_password"})


@dataclass(frozen=True, slots=True)
class SentinelTarget:
    """A master watched by sentinels, and how to reach and log in to both."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    sentinel_username: str | None = None
    sentinel_password: str | None = None


def sentinel_target(url: str) -> SentinelTarget | None:
    """The Sentinel target ``url`` names; None for a single server's URL. Raises
    ConfigurationError for a URL of neither kind, or a malformed Sentinel URL."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme in SERVER_SCHEMES:
        return None
    if scheme not in SENTINEL_SCHEMES:
        kinds = "redis://, rediss://, unix://, redis+sentinel:// or rediss+sentinel://"
        raise ConfigurationError(f"a Redis URL starts with {kinds}")
    parts = urlsplit(url)
    hosts = parts.netloc.rpartition("@")[2]
    path = [p for p in parts.path.split("/") if p]
    if not hosts:
        raise ConfigurationError("a Sentinel REDIS_URL names at least one sentinel host:port")
    if not path or len(path) > 2:
        raise ConfigurationError(
            "a Sentinel REDIS_URL ends with /service or /service/db (the master's name)"
        )
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if unknown := sorted(set(options) - SENTINEL_OPTIONS):
        raise ConfigurationError(f"unknown Sentinel URL option(s): {', '.join(unknown)}")
    return SentinelTarget(
        sentinels=tuple(_address(h) for h in hosts.split(",")),
        service=unquote(path[0]),
        db=_db(path[1]) if len(path) == 2 else 0,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=SENTINEL_SCHEMES[scheme],
        sentinel_username=options.get("sentinel_username"),
        sentinel_password=options.get("sentinel_password"),
    )


def _address(text: str) -> tuple[str, int]:
    """``host:port``, ``host`` (port 26379), ``[v6]:port`` or ``[v6]``."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") if rest else str(SENTINEL_PORT)
    else:
        host, colon, port = text.rpartition(":")
        if not colon:
            host, port = port, str(SENTINEL_PORT)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(f"sentinel address {text!r} is not host:port")
    return host, int(port)


def _db(text: str) -> int:
    if not text.isdigit():
        raise ConfigurationError(f"the database in a Sentinel REDIS_URL is a number, not {text!r}")
    return int(text)
