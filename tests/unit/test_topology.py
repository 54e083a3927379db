"""What REDIS_URL names: one server, a master behind Sentinel, or a Redis Cluster."""

from __future__ import annotations

import pytest

from arqd.core.errors import ConfigurationError
from arqd.store.topology import ClusterTarget, SentinelTarget, cluster_target, sentinel_target


@pytest.mark.parametrize(
    "url", ["redis://localhost:6379/0", "rediss://u:p@cache:6380", "unix:///tmp/r.sock"]
)
def test_a_single_servers_url_is_left_to_redis_py(url: str) -> None:
    assert sentinel_target(url) is None
    assert cluster_target(url) is None


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_masters_login() -> None:
    url = (
        "rediss+sentinel://app:s%3Acret@10.0.0.1:26380,[::1],sentinel-c/orders/3"
        "?sentinel_password=watch"
    )
    assert sentinel_target(url) == SentinelTarget(
        sentinels=(("10.0.0.1", 26380), ("::1", 26379), ("sentinel-c", 26379)),
        service="orders",
        db=3,
        username="app",
        password="s:cret",
        tls=True,
        sentinel_password="watch",
    )


def test_the_database_defaults_to_0_and_tls_to_off() -> None:
    target = sentinel_target("redis+sentinel://s1:26379/mymaster")
    assert target is not None
    assert (target.db, target.tls, target.password) == (0, False, None)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis+sentinel://s1:0/m", "'s1:0' is not host:port"),
        ("redis+sentinel://s1/m/1/2", "ends with /service or /service/db"),
        ("sentinel://s1/m", "a Redis URL starts with redis://"),
    ],
)
def test_a_malformed_sentinel_url_says_what_is_wrong(url: str, reason: str) -> None:
    with pytest.raises(ConfigurationError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        sentinel_target(url)


def test_a_cluster_url_names_its_seed_nodes_and_their_login() -> None:
    url = "rediss+cluster://app:s%3Acret@10.0.0.1:7000,[::1],node-c:7002/0"
    assert cluster_target(url) == ClusterTarget(
        nodes=(("10.0.0.1", 7000), ("::1", 6379), ("node-c", 7002)),
        username="app",
        password="s:cret",
        tls=True,
    )
    assert sentinel_target(url) is None
    assert cluster_target("redis+cluster://n1:7000,n2:7001") == ClusterTarget(
        nodes=(("n1", 7000), ("n2", 7001))
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis+cluster://n1:7000/2", "has only database 0"),
        ("redis+cluster://n1:x", "cluster node address 'n1:x' is not host:port"),
        ("redis+cluster://", "names at least one node host:port"),
        ("redis+cluster://n1?read_from_replicas=1", "takes no options"),
        ("cluster://n1", "a Redis URL starts with redis://"),
    ],
)
def test_a_malformed_cluster_url_says_what_is_wrong(url: str, reason: str) -> None:
    with pytest.raises(ConfigurationError, match=reason):
        cluster_target(url)
