"""`durable-graph graph`: the Mermaid text the README shows, and an SVG laid out by the vendored
Mermaid in the Chromium `make test` installs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.api.conftest import REPO

README_BLOCK = re.compile(r"```mermaid\n(.*?)```", re.S)


def graph(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "durable_graph", "graph", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": f"{REPO / 'shared'}:{REPO}", "PATH": "/usr/bin:/bin"},
    )


def test_mermaid_text_is_the_picture_in_the_readme() -> None:
    done = graph("examples.email_approval:graph")
    assert done.returncode == 0, done.stderr
    assert "n_draft_email --> n_human_review" in done.stdout
    assert 'n_human_review["human_review · pauses before"]' in done.stdout
    shown = README_BLOCK.search((REPO / "README.md").read_text(encoding="utf-8"))
    assert shown is not None and shown.group(1) == done.stdout


def test_conditional_edges_are_dotted_and_named_by_their_router() -> None:
    done = graph("tests.graphs:review_graph")
    assert done.returncode == 0, done.stderr
    assert re.search(r'n_assess -\.->\|"route"\| n_big', done.stdout), done.stdout


def test_svg_is_laid_out_by_the_vendored_mermaid(tmp_path: Path) -> None:
    out = tmp_path / "g.svg"
    done = graph("examples.email_approval:graph", "--format", "svg", "--out", str(out))
    assert done.returncode == 0, done.stderr
    svg = out.read_text(encoding="utf-8")
    assert svg.startswith('<?xml version="1.0"') and "<svg" in svg
    assert "draft_email" in svg and 'aria-roledescription="flowchart-v2"' in svg


def test_a_graph_that_does_not_import_is_one_line_and_exit_2() -> None:
    done = graph("examples.nowhere:graph")
    assert done.returncode == 2 and done.stderr.startswith("error: cannot import module")
