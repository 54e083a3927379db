"""The dashboard's templates, style sheet and script ship in the wheel: nothing is built
or fetched at install or run time."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "src" / "arqd" / "ui"


def test_the_wheel_holds_every_template_and_static_file(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        message = "needs uv on the PATH to build the wheel"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(tmp_path), "--quiet"], cwd=ROOT, check=True
    )
    (wheel,) = tmp_path.glob("arqd-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    wanted = {
        f"arqd/ui/{path.relative_to(ASSETS)}"
        for folder in ("templates", "static")
        for path in (ASSETS / folder).iterdir()
    }
    assert len(wanted) >= 12
    assert wanted <= shipped


def test_no_page_or_script_loads_anything_from_elsewhere() -> None:
    for path in [*(ASSETS / "templates").iterdir(), *(ASSETS / "static").iterdir()]:
        text = path.read_text()
        for reference in ("http://", "https://", "//cdn", "@import"):
            allowed = path.suffix == ".svg" and reference == "http://"  # the SVG namespace
            assert allowed or reference not in text, f"{path.name} names {reference}"
