"""The files the package reads at run time (the explorer's and approval page's templates, the
vendored Mermaid, stylesheets, the OpenAPI document) ship in the wheel, not only in a checkout:
an installed `durable-graph serve` or a Lambda layer built from the wheel would otherwise
answer the explorer with a 500.

The first test reads the package-data globs (fast); the second builds the wheel itself, the way
a user's `pip install` does (in tmp_path, with build isolation: never an editable install), and
looks inside it."""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from durable_graph.api.explorer import STATIC

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "shared" / "durable_graph"
TEMPLATES = ("approval.html", "explorer.html", "explorer_graph.html", "message.html", "style.css")


def _data_files() -> list[str]:
    """Every file of the package that is not Python source, relative to the package."""
    return sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    )


def test_the_package_data_globs_cover_every_data_file_the_code_reads() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["durable_graph"]
    needed = {f"api/static/{name}" for name in STATIC} | {f"api/templates/{t}" for t in TEMPLATES}
    files = _data_files()
    assert needed <= set(files), needed - set(files)
    uncovered = [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert not uncovered, f"not in [tool.setuptools.package-data]: {uncovered}"


@pytest.mark.slow
def test_the_built_wheel_holds_the_templates_and_static_files(tmp_path: Path) -> None:
    """Given a copy of the project's sources, when pip builds its wheel, then every data file
    (Mermaid, templates, stylesheets, OpenAPI, py.typed) is in it, byte for byte."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(
        REPO / "shared", source / "shared", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("durable_graph-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name: archive.read(name) for name in archive.namelist()}
    for relative in _data_files():
        name = f"durable_graph/{relative}"
        assert name in shipped, f"{name} is missing from {wheel.name}"
        assert shipped[name] == (PACKAGE / relative).read_bytes(), name
    assert "durable_graph/api/static/mermaid.min.js" in shipped
