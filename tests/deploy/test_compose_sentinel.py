"""deploy/docker-compose.sentinel.yml, laid over docker-compose.yml: a replica, three
sentinels, and arqd finding the master through them. (No Docker engine runs it here: the
sentinels' configuration the file writes is run by a real sentinel instead.)"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from deploy_contract import DEPLOY, load_yaml, mapping

from arqd.core.settings import Settings
from arqd.store.topology import sentinel_target
from tools import redis_server_binary
from topologies import free_port

SENTINELS = ("sentinel-1", "sentinel-2", "sentinel-3")


@pytest.fixture(scope="module")
def overlay() -> dict[str, dict[str, Any]]:
    compose = mapping(load_yaml(DEPLOY / "docker-compose.sentinel.yml"), "sentinel overlay")
    return {name: mapping(s, name) for name, s in compose["services"].items()}


@pytest.fixture(scope="module")
def base() -> dict[str, dict[str, Any]]:
    compose = mapping(load_yaml(DEPLOY / "docker-compose.yml"), "docker-compose.yml")
    return {name: mapping(s, name) for name, s in compose["services"].items()}


def sentinel_lines(service: dict[str, Any]) -> list[str]:
    """The lines of the configuration a sentinel service writes at start."""
    script = service["command"][-1]
    printf = script.split(" > ")[0]
    return shlex.split(printf)[2:]


def test_the_overlay_adds_a_replica_and_three_sentinels(
    overlay: dict[str, dict[str, Any]], base: dict[str, dict[str, Any]]
) -> None:
    assert {"redis-replica", *SENTINELS} <= set(overlay)
    assert set(overlay) - {"redis-replica", *SENTINELS} <= set(base)  # the rest overrides
    replica = overlay["redis-replica"]["command"]
    assert replica[replica.index("--replicaof") + 1 :][:2] == ["redis", "6379"]
    assert overlay["redis-replica"]["image"] == base["redis"]["image"]


@pytest.mark.parametrize("name", SENTINELS)
def test_each_sentinel_watches_the_master_with_a_quorum(
    overlay: dict[str, dict[str, Any]], name: str
) -> None:
    lines = sentinel_lines(overlay[name])
    monitor = next(line.split() for line in lines if line.startswith("sentinel monitor"))
    _, _, service, host, port, quorum = monitor
    assert (host, port) == ("redis", "6379")
    assert int(quorum) == len(SENTINELS) // 2 + 1
    assert "sentinel resolve-hostnames yes" in lines  # services are found by name
    assert overlay[name]["healthcheck"]["test"][-1] == service


@pytest.mark.parametrize("service", ["api", "worker"])
def test_arqd_finds_the_master_through_every_sentinel(
    overlay: dict[str, dict[str, Any]], service: str
) -> None:
    env = overlay[service]["environment"]
    target = sentinel_target(env["REDIS_URL"])
    assert target is not None
    assert {host for host, _ in target.sentinels} == set(SENTINELS)
    monitor = next(
        line.split() for line in sentinel_lines(overlay["sentinel-1"]) if "monitor" in line
    )
    assert target.service == monitor[2]
    Settings.from_env({"REDIS_URL": env["REDIS_URL"], **{k: v for k, v in env.items()}})
    waits_for = overlay[service]["depends_on"]
    assert all(waits_for[s]["condition"] == "service_healthy" for s in SENTINELS)


def test_a_real_sentinel_runs_the_configuration_the_file_writes(tmp_path: Path) -> None:
    """The lines, with the master's name and port pointed at a local server, run."""
    master_port, sentinel_port = free_port(), free_port()
    binary = redis_server_binary()
    master = subprocess.Popen(
        [binary, "--port", str(master_port), "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    overlay = mapping(load_yaml(DEPLOY / "docker-compose.sentinel.yml"), "overlay")
    lines = sentinel_lines(mapping(overlay["services"]["sentinel-1"], "sentinel-1"))
    local = [
        re.sub(r"\bredis 6379\b", f"127.0.0.1 {master_port}", line).replace(
            "port 26379", f"port {sentinel_port}"
        )
        for line in lines
    ]
    conf = tmp_path / "sentinel.conf"
    conf.write_text("\n".join(local) + "\n")
    sentinel = subprocess.Popen([binary, str(conf), "--sentinel"], stdout=subprocess.DEVNULL)
    client = redis.Redis(port=sentinel_port, socket_timeout=1)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                address: Any = client.sentinel_get_master_addr_by_name("arqd")
                break
            except redis.RedisError:
                assert sentinel.poll() is None, "the sentinel refused its configuration"
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert int(address[1]) == master_port
    finally:
        client.close()
        for process in (sentinel, master):
            process.terminate()
            process.wait(10)
