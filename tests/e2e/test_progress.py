"""The CLI shows a long fan-out's progress to the person running it (on stderr)."""

from __future__ import annotations

import json
import re

from tests.e2e.conftest import Cli


def test_a_fan_out_run_prints_its_tasks_progress(cli: Cli) -> None:
    """Given 60 documents through Send (61 tasks with the lint), when `run` is watched by a
    person, then stderr shows the tasks done out of 61 about every 5%, before the step line."""
    documents = json.dumps({"documents": [f"doc-{i}" for i in range(60)]})
    done = cli.run("run", "tests.graphs:docs_graph", "--thread", "p1", "--input", documents)
    assert done.returncode == 0, done.stderr
    counts = [int(m) for m in re.findall(r"tasks\s+(\d+)/61 done", done.stderr)]
    assert len(counts) >= 10 and max(counts) <= 60  # the last task commits the step instead
