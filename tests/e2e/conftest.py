"""Real processes: every command runs as `python -m durable_graph` in its own process."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from durable_graph.backend import Backend
from durable_graph.backends.local import local_backend

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Cli:
    home: Path
    env: dict[str, str]

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "durable_graph", *args]

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def json(self, *args: str, expect: int = 0) -> Any:
        done = self.run(*args, "--json")
        assert done.returncode == expect, (done.returncode, done.stdout, done.stderr)
        return json.loads(done.stdout)

    def spawn(self, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*args),
            cwd=REPO,
            env={**self.env, **(extra_env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.home / "state.db") as conn:
            return conn.execute(sql, params).fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with sqlite3.connect(self.home / "state.db") as conn:
            conn.execute(sql, params)
            conn.commit()

    def backend(self) -> Backend:
        """The store the commands use, opened in this process."""
        return local_backend(self.home)

    def stored(self) -> list[tuple[Any, ...]]:
        """Everything the store holds that a bad request must not change."""
        return (
            self.rows("SELECT thread_id, step, body FROM checkpoints ORDER BY thread_id, step")
            + self.rows("SELECT thread_id, revision, body FROM threads ORDER BY thread_id")
            + self.rows("SELECT thread_id, key, version FROM records ORDER BY thread_id, key")
            + self.rows("SELECT dedup_id FROM queue ORDER BY id")
        )


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    home = tmp_path / "home"
    env = {
        **os.environ,
        "DURABLE_GRAPH_HOME": str(home),
        "DG_MARKS": str(tmp_path / "marks"),
        "PYTHONPATH": f"{REPO / 'shared'}{os.pathsep}{REPO}",
    }
    return Cli(home=home, env=env)
