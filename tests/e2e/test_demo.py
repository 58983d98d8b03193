"""`make demo` is the first thing a newcomer runs: it must work, from an empty home."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def assert_the_demo_runs(home: Path, store: str | None = None) -> None:
    """examples/demo.py in a process of its own, from the empty `home` (on `store` when one is
    given, as `DURABLE_GRAPH_STORE`): the whole exercise passes and one email is sent."""
    env = {
        **os.environ,
        "DURABLE_GRAPH_HOME": str(home),
        "PYTHONPATH": f"{REPO / 'shared'}{os.pathsep}{REPO}",
    }
    if store is not None:
        env["DURABLE_GRAPH_STORE"] = store
    done = subprocess.run(
        [sys.executable, "examples/demo.py"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "demo complete" in done.stdout
    assert "replay tx-99812 step 1: reproduced" in done.stdout
    assert "3 threads: 3 ok, 0 failed" in done.stdout
    assert len(list((home / "outbox" / "sent").iterdir())) == 1


def test_demo_runs_the_whole_exercise(tmp_path: Path) -> None:
    assert_the_demo_runs(tmp_path / "demo")
