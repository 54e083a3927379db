"""Where each queue lives (``Client.placement``): its keys' Redis Cluster hash slot, the
one Redis Cluster would compute, and the server holding it: behind Sentinel the master of
the moment, on a cluster the master of the slot; shown by ``GET /queues`` and ``arqd
inspect``. And what arqd runs on (``Client.topology``), which the dashboard's overview
shows."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
import redis
from rich.console import Console

from arqd.api import create_app
from arqd.cli_inspect import queues_table
from arqd.client import Client
from arqd.core.settings import Settings
from e2e.live import AUTH, LiveServer, settings_for
from tools import redis_server_binary
from topologies import ClusterSetup, SentinelSetup, free_port

pytestmark = pytest.mark.topologies()


@pytest.fixture(scope="module")
def cluster_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[redis.Redis]:
    """A server with cluster support on: it names the slot of a key (CLUSTER KEYSLOT)."""
    folder = tmp_path_factory.mktemp("cluster-node")
    port = free_port()
    process = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--cluster-enabled", "yes",
         "--cluster-port", str(free_port()),  # not port + 10000: that may pass 65535
         "--cluster-config-file", str(folder / "nodes.conf"), "--save", "", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    node = redis.Redis(port=port)
    try:
        deadline = time.monotonic() + 30  # a loaded machine starts it slowly
        while True:
            try:
                node.ping()
                break
            except redis.ConnectionError:
                assert process.poll() is None, "the cluster-enabled server exited"
                assert time.monotonic() < deadline, "the cluster-enabled server did not start"
                time.sleep(0.02)
        yield node
    finally:
        node.close()
        process.terminate()
        process.wait(10)


async def test_a_queue_is_placed_on_its_slot_and_its_server(
    client: Client, settings: Settings, topology: str, request: pytest.FixtureRequest,
    cluster_node: redis.Redis,
) -> None:  # fmt: skip
    await client.enqueue("echo", queue="orders-7")
    slot, node = await client.placement("orders-7")
    assert slot == cluster_node.cluster("KEYSLOT", "{orders-7}")
    runs_on = await client.topology()
    if topology == "cluster":  # the master of the queue's slot, one of the masters
        cluster: ClusterSetup = request.getfixturevalue("cluster_setup")
        assert node == f"127.0.0.1:{cluster.master_port_of_slot(slot)}"
        assert runs_on.master.split(", ") == sorted(f"127.0.0.1:{p}" for p in cluster.masters())
        assert (runs_on.kind, runs_on.replicas) == ("cluster", 1)
    elif topology == "sentinel":
        assert runs_on.master == node
        setup: SentinelSetup = request.getfixturevalue("sentinel_setup")
        assert node == f"127.0.0.1:{setup.master_port()}"
        assert (runs_on.kind, runs_on.replicas) == ("sentinel", 1)
    else:
        assert runs_on.master == node
        assert node == (settings.redis_url or "").removeprefix("redis://").removesuffix("/0")
        assert (runs_on.kind, runs_on.replicas) == ("server", 0)

    server = LiveServer(create_app(settings_for(settings.redis_url or "")))
    server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH) as http:
            await http.post("/tasks", json={"type": "echo", "queue": "orders-7"})
            shown = {q["queue"]: q for q in (await http.get("/queues")).json()["queues"]}
    finally:
        server.stop()
    assert (shown["orders-7"]["slot"], shown["orders-7"]["node"]) == (slot, node)

    console = Console(width=250, record=True)
    console.print(queues_table(await client.stats("orders-7"), [(slot, node)]))
    printed = console.export_text()
    assert f"{slot}" in printed
    assert node in printed
