"""``python -m bench.peers install [NAME...]``: the peers' environments, opt-in.

Each Python peer gets a virtual environment of its own under ``bench/.peers/<name>/``
(``uv venv`` with arqd's Python, then ``uv pip install`` of its pinned packages); BullMQ
gets ``npm install`` in ``bench/peers_node/``. Nothing is added to arqd's own environment.
A peer that cannot be installed is reported, and the others go on.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.procs import REPO
from bench.systems.catalog import ALL, BY_NAME
from bench.systems.spec import Peer

PEERS_DIR = REPO / "bench" / ".peers"
NODE_DIR = REPO / "bench" / "peers_node"


def venv(peer: Peer) -> Path:
    """The folder of a peer's interpreter and scripts (arqd's own for arqd)."""
    if peer.kind == "arqd":
        return Path(sys.executable).parent
    return PEERS_DIR / peer.name / "bin"


def installed(peer: Peer) -> bool:
    if peer.kind == "node":
        return (NODE_DIR / "node_modules" / "bullmq" / "package.json").exists()
    return (venv(peer) / "python").exists()


def _run(command: Sequence[str], cwd: Path = REPO) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError((done.stderr or done.stdout).strip()[-1500:])


def install(peer: Peer) -> None:
    if peer.kind == "arqd":
        return
    if peer.kind == "node":
        npm = shutil.which("npm")
        if not npm:
            raise RuntimeError("npm is not on the PATH")
        _run([npm, "install", "--no-audit", "--no-fund"], cwd=NODE_DIR)
        return
    uv = shutil.which("uv")
    if not uv:
        raise RuntimeError("uv is not on the PATH")
    folder = PEERS_DIR / peer.name
    _run([uv, "venv", "--quiet", "--allow-existing", "--python", sys.executable, str(folder)])
    _run([uv, "pip", "install", "--quiet", "--python", str(folder / "bin" / "python"),
          *peer.packages])  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    add = sub.add_parser("install", help="install peers (default: all)")
    add.add_argument("names", nargs="*", metavar="NAME", help=", ".join(BY_NAME))
    args = p.parse_args(argv)
    if unknown := set(args.names) - set(BY_NAME):
        p.error(f"unknown: {', '.join(sorted(unknown))}; known: {', '.join(BY_NAME)}")
    chosen = [BY_NAME[n] for n in args.names] if args.names else list(ALL)
    failed = 0
    for peer in chosen:
        try:
            install(peer)
            print(f"{peer.name}: {_where(peer)}")
        except (RuntimeError, OSError) as exc:
            failed += 1
            print(f"{peer.name}: failed: {exc}", file=sys.stderr)
    return 1 if failed else 0


def _where(peer: Peer) -> str:
    if peer.kind == "arqd":
        return f"arqd's own environment ({venv(peer).parent})"
    if peer.kind == "node":
        return f"npm install in {NODE_DIR.relative_to(REPO)}"
    return f"{' '.join(peer.packages)} in {(PEERS_DIR / peer.name).relative_to(REPO)}"
