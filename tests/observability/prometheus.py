"""A real Prometheus (Debian's package) on loopback, scraping the targets a test names."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tools import PROMETHEUS, require
from topologies import free_port


class Prometheus:
    def __init__(self, directory: Path, targets: list[str]) -> None:
        binary = require(PROMETHEUS)
        self.port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "arqd", "static_configs": [{"targets": targets}]}],
        }
        (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={directory / 'prometheus.yml'}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=5)

    def stop(self) -> None:
        self.http.close()
        self.process.terminate()
        self.process.wait(10)

    def query(self, promql: str) -> list[dict[str, Any]]:
        reply = self.http.get("/api/v1/query", params={"query": promql}).json()
        assert reply["status"] == "success", reply
        result: list[dict[str, Any]] = reply["data"]["result"]
        return result

    def value_becomes(self, promql: str, expected: float, timeout: float = 30) -> None:
        """Wait until ``promql`` evaluates to one sample equal to ``expected``."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                result = self.query(promql)
            except httpx.HTTPError:
                result = []
            last = result
            if len(result) == 1 and float(result[0]["value"][1]) == expected:
                return
            time.sleep(0.25)
        raise AssertionError(f"{promql} never became {expected}; last: {last}")
