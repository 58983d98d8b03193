"""The saver keeps LangGraph's durability modes: with `durability="sync"` every record is a
durable (fsynced) commit; with `"async"`, LangGraph's default, a task's pending writes commit
without an fsync of their own (the next checkpoint's fsync puts them on disk, WAL order) and
every checkpoint stays durable. A killed process loses nothing either way: a real SIGKILL
mid-superstep keeps the finished task's pending write (`crash_app.py`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from langgraph.types import Command

from durable_graph.backends.local import local_backend
from durable_graph.backends.local.commit_count import DurableCommits
from durable_graph.backends.local.db import Database
from durable_graph.langgraph_saver import DurableGraphSaver
from durable_graph.verification import verify_thread
from tests.langgraph_saver.apps import review_app


def _turn(tmp_path: Path, durability: str) -> tuple[DurableCommits, int, int]:
    """One turn (input, interrupt, resume); the commits, checkpoint and write records."""
    backend = local_backend(tmp_path)
    db = backend.queue.db  # type: ignore[attr-defined]
    assert isinstance(db, Database)
    saver = DurableGraphSaver(backend)
    app = review_app(saver)
    config: Any = {"configurable": {"thread_id": "t1"}}
    counter = DurableCommits()
    db.trace(counter)
    app.invoke({"notes": ["hi"], "drafts": 0}, config, durability=durability)
    app.invoke(Command(resume="ok"), config, durability=durability)
    db.trace(None)
    assert app.get_state(config).values["notes"][-1] == "decision: ok"
    assert verify_thread(backend, "t1").ok
    records = backend.checkpoints.ledger("t1")
    checkpoints = sum("$checkpoint" in r.changes for r in records)
    return counter, checkpoints, len(records) - checkpoints


@pytest.mark.parametrize("durability", ["sync", "exit"])
def test_sync_durability_fsyncs_every_record(tmp_path: Path, durability: str) -> None:
    counter, checkpoints, writes = _turn(tmp_path, durability)
    assert counter.relaxed == 0 and counter.durable >= checkpoints + writes


def test_async_durability_relaxes_only_the_pending_writes(tmp_path: Path) -> None:
    counter, checkpoints, writes = _turn(tmp_path, "async")
    assert counter.relaxed == writes > 0
    assert counter.durable >= checkpoints > 0


REPO = Path(__file__).resolve().parents[2]


def _spawn(home: Path, marks: Path, *, hang: bool) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO / 'shared'}{os.pathsep}{REPO}",
        "DG_MARKS": str(marks),
        **({"DG_HANG": "1"} if hang else {}),
    }
    command = [sys.executable, "-m", "tests.langgraph_saver.crash_app", str(home), "t1", "ours"]
    return subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _stored_writes(home: Path) -> list[Any]:
    with DurableGraphSaver.embedded(home) as saver:
        found = saver.get_tuple({"configurable": {"thread_id": "t1"}})
        return [] if found is None else [value for _, _, value in found.pending_writes or []]


def test_a_killed_async_run_keeps_a_finished_tasks_pending_write(tmp_path: Path) -> None:
    """Given a superstep of two tasks run by `ainvoke(durability="async")` in its own process,
    `fast` finished and `slow` still running
    When the process is SIGKILLed once fast's pending write is readable from another process,
    and a new process continues the thread
    Then fast does not run again (its pending write was kept, as LangGraph's own SqliteSaver
    keeps it), slow and join run once each, and the state holds each update once."""
    home, marks = tmp_path / "home", tmp_path / "marks"
    victim = _spawn(home, marks, hang=True)
    deadline = time.monotonic() + 60
    while ["fast"] not in _stored_writes(home) or "slow-hanging" not in _marks(marks):
        assert victim.poll() is None, victim.communicate()
        assert time.monotonic() < deadline, "fast's pending write was never stored"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)

    survivor = _spawn(home, marks, hang=False)
    out, err = survivor.communicate(timeout=120)

    assert survivor.returncode == 0, err
    assert sorted(out.split()) == ["fast", "join", "slow"]
    marks_left = _marks(marks)
    # The victim ran fast and slow concurrently (either may mark first); the survivor ran only
    # slow and then join: fast is not among them, so it ran once.
    assert sorted(marks_left[:2]) == ["fast", "slow-hanging"]
    assert marks_left[2:] == ["slow", "join"]


def _marks(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split() if path.exists() else []
