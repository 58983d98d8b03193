"""Fixtures for the ledger tests: a real embedded store in tmp_path, a chat thread on it, and
the `durable-graph` command run as a real process against the same folder."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from durable_graph.backend import Backend
from durable_graph.backends.local import local_backend
from durable_graph.checkpoint import Actor
from durable_graph.clock import ManualClock
from durable_graph.runtime import CompiledGraph
from tests.ledger.graphs import graph

REPO = Path(__file__).resolve().parents[2]
THREAD = "c1"


@dataclass
class Cli:
    """`python -m durable_graph ...` in its own process, on one home folder."""

    home: Path

    def run(self, *args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "DURABLE_GRAPH_HOME": str(home or self.home),
            "PYTHONPATH": f"{REPO / 'shared'}{os.pathsep}{REPO}",
        }
        return subprocess.run(
            [sys.executable, "-m", "durable_graph", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )

    def json(self, *args: str, expect: int = 0, home: Path | None = None) -> Any:
        done = self.run(*args, "--json", home=home)
        assert done.returncode == expect, (done.returncode, done.stdout, done.stderr)
        return json.loads(done.stdout)

    def sql(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Edit or read the real SQLite file, as an attacker with write access would."""
        with sqlite3.connect(self.home / "state.db") as conn:
            rows = conn.execute(statement, params).fetchall()
            conn.commit()
        return rows


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def backend(home: Path) -> Iterator[Backend]:
    built = local_backend(home, clock=ManualClock())
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def app(backend: Backend) -> CompiledGraph:
    return graph.with_backend(backend, clock=ManualClock())


def run_chat(app: CompiledGraph, thread_id: str = THREAD, *, approve: bool = True) -> None:
    """0 input, 1-6 `reply` (suspends before `review`), 7 the decision, 8 `review` (done)."""
    app.invoke({"attachment": "A" * 10_000}, thread_id=thread_id)
    app.resume(
        thread_id,
        values={"approved": approve},
        as_node=None,
        actor=Actor(kind="human", id="alice@example.com"),
    )


@pytest.fixture
def chat(app: CompiledGraph) -> CompiledGraph:
    run_chat(app)
    return app


@pytest.fixture
def cli(home: Path) -> Cli:
    return Cli(home)
