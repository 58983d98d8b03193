"""Real processes: every command runs as `python -m durable_graph` in its own process."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
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


def kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL `proc` and reap it: the crash under test, nothing flushed or cleaned up."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


def wait_while_running(
    proc: subprocess.Popen[str],
    reached: Callable[[], bool],
    never: str,
    *,
    timeout: float = 30,
    poll: float = 0.02,
) -> None:
    """Wait until `reached()` while `proc` runs: fail with its output if it exits first, or
    with `never` once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while not reached():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, never
        time.sleep(poll)


def effect_folder(cli: Cli, tmp_path: Path, lease: float) -> Path:
    """The folder where `effect_graphs`' effects leave their marks and the calls they made,
    with every process of `cli` on tasks (and effect claims) leased for `lease` seconds."""
    folder = tmp_path / "effect"
    folder.mkdir()
    cli.env["DG_EFFECT_DIR"] = str(folder)
    cli.env["DURABLE_GRAPH_LEASE_SECONDS"] = str(lease)
    return folder
