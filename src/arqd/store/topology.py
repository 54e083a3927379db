"""What ``REDIS_URL`` names: one Redis server, a Sentinel-watched master, or a Cluster.

- ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS), ``unix:///path``:
  one server, as redis-py reads them.
- ``redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db]``, and
  ``rediss+sentinel://`` for TLS to Redis: the master of ``service`` as the listed
  sentinels name it (default port 26379), followed through failovers. The user and
  password are the master's; ``?sentinel_username=...&sentinel_password=...`` are the
  sentinels' own, when they require one. This is the form redis-py, Celery and Kombu use.
- ``redis+cluster://[[user]:password@]host[:port][,host[:port]...]``, and
  ``rediss+cluster://`` for TLS: a Redis Cluster, found from any of the listed seed nodes
  (default port 6379; more than one, so that start-up does not hang on one node being
  down). A cluster has only database 0: a path other than ``/`` or ``/0`` is refused.

A URL of none of these kinds is refused with a message naming what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from arqd.core.errors import ConfigurationError

SENTINEL_SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True}  # -> TLS to Redis
CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}  # -> TLS
SERVER_SCHEMES = ("redis", "rediss", "unix")
SENTINEL_PORT = 26379
REDIS_PORT = 6379
KINDS = "redis://, rediss://, unix://, redis+sentinel://, rediss+sentinel://, redis+cluster:// or rediss+cluster://"
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


@dataclass(frozen=True, slots=True)
class ClusterTarget:
    """A Redis Cluster: seed nodes, and how to log in to every node."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None
    tls: bool = False


def scheme_of(url: str) -> str:
    """The URL's scheme, lower case; raises ConfigurationError for one arqd does not know."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in SERVER_SCHEMES and scheme not in SENTINEL_SCHEMES | CLUSTER_SCHEMES:
        raise ConfigurationError(f"a Redis URL starts with {KINDS}")
    return scheme


def cluster_target(url: str) -> ClusterTarget | None:
    """The cluster ``url`` names; None for a server's or Sentinel's URL. Raises
    ConfigurationError for an unknown scheme or a malformed cluster URL."""
    scheme = scheme_of(url)
    if scheme not in CLUSTER_SCHEMES:
        return None
    parts = urlsplit(url)
    hosts = parts.netloc.rpartition("@")[2]
    if not hosts:
        raise ConfigurationError("a cluster REDIS_URL names at least one node host:port")
    if parts.path.strip("/") not in ("", "0"):
        raise ConfigurationError(
            f"a Redis Cluster has only database 0, so a cluster REDIS_URL ends with the "
            f"hosts, / or /0, not {parts.path!r}"
        )
    if parts.query:
        raise ConfigurationError(f"a cluster REDIS_URL takes no options, not {parts.query!r}")
    return ClusterTarget(
        nodes=tuple(_address(h, REDIS_PORT, "cluster node") for h in hosts.split(",")),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=CLUSTER_SCHEMES[scheme],
    )


def sentinel_target(url: str) -> SentinelTarget | None:
    """The Sentinel target ``url`` names; None for a server's or a cluster's URL. Raises
    ConfigurationError for an unknown scheme, or a malformed Sentinel URL."""
    scheme = scheme_of(url)
    if scheme not in SENTINEL_SCHEMES:
        return None
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
        sentinels=tuple(_address(h, SENTINEL_PORT, "sentinel") for h in hosts.split(",")),
        service=unquote(path[0]),
        db=_db(path[1]) if len(path) == 2 else 0,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=SENTINEL_SCHEMES[scheme],
        sentinel_username=options.get("sentinel_username"),
        sentinel_password=options.get("sentinel_password"),
    )


def _address(text: str, default_port: int, what: str) -> tuple[str, int]:
    """``host:port``, ``host`` (``default_port``), ``[v6]:port`` or ``[v6]``."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") if rest else str(default_port)
    else:
        host, colon, port = text.rpartition(":")
        if not colon:
            host, port = port, str(default_port)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(f"{what} address {text!r} is not host:port")
    return host, int(port)


def _db(text: str) -> int:
    if not text.isdigit():
        raise ConfigurationError(f"the database in a Sentinel REDIS_URL is a number, not {text!r}")
    return int(text)
