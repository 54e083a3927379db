"""deploy/docker-compose.cluster.yml, laid over docker-compose.yml: six Redis nodes that the
one-shot cluster-init makes three masters with a replica each, and arqd finding the cluster
from seed nodes. (No Docker engine runs it here: six real servers run the nodes' flags
instead, and cluster-init's script, with redis-cli, makes them a cluster.)"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from deploy_contract import DEPLOY, load_yaml, mapping

from arqd.core.settings import Settings
from tools import Tool, redis_server_binary, require
from topologies import free_port

NODES = tuple(f"redis-{i}" for i in range(1, 7))
ARQD_SERVICES = ("api", "worker")
REDIS_PORT = 6379
REDIS_CLI = Tool("redis-cli", "redis-tools")  # cluster-init's program, as in the image


def services_of(name: str) -> dict[str, dict[str, Any]]:
    compose = mapping(load_yaml(DEPLOY / name), name)
    return {service: mapping(s, service) for service, s in compose["services"].items()}


@pytest.fixture(scope="module")
def overlay() -> dict[str, dict[str, Any]]:
    return services_of("docker-compose.cluster.yml")


@pytest.fixture(scope="module")
def base() -> dict[str, dict[str, Any]]:
    return services_of("docker-compose.yml")


def merged(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """``overlay`` laid over ``base`` as Compose merges mappings (depends_on, environment):
    key by key, the overlay's value winning, mappings merged in turn."""
    result = dict(base)
    for key, value in overlay.items():
        below = result.get(key)
        if isinstance(below, dict) and isinstance(value, dict):
            result[key] = merged(below, value)
        else:
            result[key] = value
    return result


def flags(command: list[str]) -> dict[str, str]:
    """A redis-server command's ``--name value`` pairs."""
    assert command[0] == "redis-server", command
    names, values = command[1::2], command[2::2]
    assert len(names) == len(values), f"a flag without a value in {command}"
    assert all(name.startswith("--") for name in names), command
    return dict(zip(names, values, strict=True))


def init_script(overlay: dict[str, dict[str, Any]]) -> str:
    command = overlay["cluster-init"]["command"]
    assert command[:2] == ["sh", "-c"]
    script = str(command[2])
    assert "$" not in script  # nothing for Compose to interpolate: it runs as written
    return script


def create_command(script: str) -> list[str]:
    """The ``redis-cli --cluster create ...`` command in cluster-init's script."""
    found = re.search(r"redis-cli --cluster create [^;|&]*", script)
    assert found is not None, "cluster-init runs no redis-cli --cluster create"
    return shlex.split(found.group())


def test_the_overlay_adds_six_nodes_and_cluster_init(
    overlay: dict[str, dict[str, Any]], base: dict[str, dict[str, Any]]
) -> None:
    assert set(overlay) - set(base) == {*NODES, "cluster-init"}  # the rest overrides
    for name in (*NODES, "cluster-init"):
        assert overlay[name]["image"] == base["redis"]["image"]


def test_the_single_redis_is_left_out_and_nothing_requires_it(
    overlay: dict[str, dict[str, Any]], base: dict[str, dict[str, Any]]
) -> None:
    assert overlay["redis"] == {"profiles": ["single-redis"]}  # started only on request
    stack = {name: merged(base.get(name, {}), overlay.get(name, {})) for name in {*base, *overlay}}
    enabled = {name: s for name, s in stack.items() if not s.get("profiles")}
    for name, service in enabled.items():
        waits_for = service.get("depends_on", {})
        if "redis" in waits_for:  # Compose refuses a required dependency that is disabled
            assert waits_for["redis"]["required"] is False, name
    assert {"api", "worker"} <= {
        n for n, s in enabled.items() if "redis" in s.get("depends_on", {})
    }


@pytest.mark.parametrize("name", NODES)
def test_each_node_is_a_cluster_node_with_the_base_flags(
    overlay: dict[str, dict[str, Any]], base: dict[str, dict[str, Any]], name: str
) -> None:
    node = flags(overlay[name]["command"])
    assert flags(base["redis"]["command"]).items() <= node.items()  # append-only, as the base
    assert node["--cluster-enabled"] == "yes"
    assert not node["--cluster-config-file"].startswith("/")  # in /data, the working dir
    assert node["--cluster-node-timeout"] == "5000"
    assert node["--cluster-announce-hostname"] == name  # clients are sent to the service
    assert node["--cluster-preferred-endpoint-type"] == "hostname"
    assert overlay[name]["volumes"] == [f"{name}-data:/data"]
    compose = mapping(load_yaml(DEPLOY / "docker-compose.cluster.yml"), "overlay")
    assert f"{name}-data" in compose["volumes"]
    assert overlay[name]["healthcheck"] == base["redis"]["healthcheck"]


def test_cluster_init_creates_three_masters_with_a_replica_each(
    overlay: dict[str, dict[str, Any]],
) -> None:
    command = create_command(init_script(overlay))
    hosts = command[3 : next(i for i, a in enumerate(command) if i > 2 and a.startswith("--"))]
    assert hosts == [f"{name}:{REDIS_PORT}" for name in NODES]
    replicas = int(command[command.index("--cluster-replicas") + 1])
    assert replicas == 1
    assert len(hosts) // (1 + replicas) == 3  # masters; redis-cli makes the rest replicas
    assert "--cluster-yes" in command  # no prompt: the service has no terminal
    waits_for = overlay["cluster-init"]["depends_on"]
    assert {n: waits_for[n]["condition"] for n in NODES} == dict.fromkeys(NODES, "service_healthy")
    assert overlay["cluster-init"]["restart"] == "no"  # one-shot


def test_cluster_init_checks_the_cluster_before_creating_it(
    overlay: dict[str, dict[str, Any]],
) -> None:
    script = init_script(overlay)
    up, create = script.index("cluster_state:ok"), script.index("--cluster create")
    assert up < script.index("exit 0") < create
    assert script.index("cluster_slots_assigned:0") < create  # only on empty nodes


@pytest.mark.parametrize("service", ARQD_SERVICES)
def test_arqd_services_use_the_cluster_once_cluster_init_is_done(
    overlay: dict[str, dict[str, Any]], base: dict[str, dict[str, Any]], service: str
) -> None:
    env = merged(base[service]["environment"], overlay[service]["environment"])
    assert env["REDIS_URL"].startswith("redis+cluster://")
    assert env["ARQD_REPLICA_ACKS"] == "1"
    settings = Settings.from_env({k: re.sub(r"\$\{\w+:-(.*)\}", r"\1", v) for k, v in env.items()})
    assert settings.replica_acks == 1
    done = overlay[service]["depends_on"]["cluster-init"]
    assert done["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("service", ARQD_SERVICES)
def test_the_redis_url_names_node_services_as_seeds(
    overlay: dict[str, dict[str, Any]], service: str
) -> None:
    # Imported here, so the other tests of the file run without arqd's cluster support.
    from arqd.store.topology import cluster_target

    target = cluster_target(overlay[service]["environment"]["REDIS_URL"])
    assert target is not None
    assert set(target.nodes) <= {(name, REDIS_PORT) for name in NODES}
    assert len(target.nodes) >= 3  # start-up does not hang on one node being down


# Six real servers run each node's flags: only the port, the cluster bus port (not the
# port + 10000, which may be taken or past 65535), the address and the directory are
# local. The hostname flags run as written: a node only announces its name to clients
# (CLUSTER SLOTS, redirects) and never resolves it (the cluster bus gossips addresses), so
# here the nodes announce `redis-1`... too; the test reads the names back rather than
# following a redirect to a name this machine cannot resolve.


def _command(port: int, *args: str) -> Any:
    client = redis.Redis(port=port, socket_timeout=2, decode_responses=True)
    try:
        return client.execute_command(*args)  # type: ignore[no-untyped-call]
    finally:
        client.close()


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    """The six nodes of the compose file, run locally: service name -> port."""
    overlay = services_of("docker-compose.cluster.yml")
    directory = tmp_path_factory.mktemp("cluster")
    binary = redis_server_binary()
    ports = {name: free_port() for name in NODES}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, port in ports.items():
            folder = directory / name
            folder.mkdir()
            local = ["--port", str(port), "--cluster-port", str(free_port())]
            local += ["--bind", "127.0.0.1", "--dir", str(folder)]
            command = [binary, *overlay[name]["command"][1:], *local]
            processes[name] = subprocess.Popen(command, cwd=folder, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        for name, port in ports.items():
            while True:
                try:
                    _command(port, "PING")
                    break
                except redis.ConnectionError:
                    assert processes[name].poll() is None, f"{name} refused its flags"
                    assert time.monotonic() < deadline, f"{name} did not start"
                    time.sleep(0.02)
        yield ports
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.wait(10)


def test_six_servers_run_the_nodes_flags(
    nodes: dict[str, int], overlay: dict[str, dict[str, Any]]
) -> None:
    for name, port in nodes.items():
        wanted = flags(overlay[name]["command"])
        del wanted["--cluster-config-file"]  # a path in this test's directory here
        client = redis.Redis(port=port, socket_timeout=2, decode_responses=True)
        try:
            config = {flag: client.config_get(flag[2:])[flag[2:]] for flag in wanted}
            assert client.info("cluster")["cluster_enabled"] == 1
        finally:
            client.close()
        assert config == wanted, name


def cluster_nodes(port: int) -> dict[str, tuple[str, str]]:
    """``CLUSTER NODES`` as the node at ``port`` sees it: id -> (role, its master's id)."""
    table: dict[str, tuple[str, str]] = {}
    for line in str(_command(port, "CLUSTER", "NODES")).splitlines():
        node_id, _, node_flags, master = line.split()[:4]
        role = "master" if "master" in node_flags.split(",") else "replica"
        table[node_id] = (role, master)
    return table


def formed(nodes: dict[str, int]) -> bool:
    """Every node says ``cluster_state:ok`` and sees three masters, each with a replica."""
    for port in nodes.values():
        if "cluster_state:ok" not in str(_command(port, "CLUSTER", "INFO")):
            return False
        table = cluster_nodes(port)
        masters = {i for i, (role, _) in table.items() if role == "master"}
        followed = [master for role, master in table.values() if role == "replica"]
        if len(masters) != 3 or sorted(followed) != sorted(masters):
            return False
    return True


def test_cluster_init_forms_three_masters_each_with_a_replica(
    nodes: dict[str, int], overlay: dict[str, dict[str, Any]]
) -> None:
    require(REDIS_CLI)
    script = re.sub(
        rf"\b(redis-\d):{REDIS_PORT}\b",
        lambda m: f"127.0.0.1:{nodes[m.group(1)]}",
        init_script(overlay),
    )
    assert str(REDIS_PORT) not in script  # every node's address is a local one

    def run() -> str:
        done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=90)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    assert "up already" not in run()  # it created the cluster
    deadline = time.monotonic() + 20
    while not formed(nodes):
        assert time.monotonic() < deadline, cluster_nodes(nodes["redis-1"])
        time.sleep(0.1)
    first = cluster_nodes(nodes["redis-1"])
    slots = _command(nodes["redis-1"], "CLUSTER", "SLOTS")
    assert {str(r[2][0]) for r in slots} <= set(NODES)  # clients see the services' names
    assert sum(int(r[1]) - int(r[0]) + 1 for r in slots) == 16384

    assert "up already" in run()  # a second run changes nothing
    assert cluster_nodes(nodes["redis-1"]) == first
