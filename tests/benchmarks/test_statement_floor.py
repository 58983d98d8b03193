"""`bench/statement_floor.py`, the storage floor printed under the approval benchmark: its
replay must do what the engine's statements did, for every replayed thread, or the floor it
prints is the cost of something else (a statement that matched no row costs less than one that
wrote it). Run the way the benchmark runs it: in a child process (`run_in_child`)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bench.approval_throughput import run_in_child
from bench.statement_floor import (
    RECORDED,
    STATEMENTS,
    STORE_FILE,
    WARM_UP,
    commits_of,
    for_thread,
    record_flow,
)

THREADS = 7

pytestmark = pytest.mark.slow


def test_replay_writes_every_thread_as_the_engine_did(tmp_path: Path) -> None:
    result = run_in_child(STATEMENTS, THREADS, tmp_path / "floor")
    assert result.threads == THREADS
    assert result.durable == 4 * THREADS  # the flow's 4 fsynced commits, each replayed
    assert result.commits == 6 * THREADS  # and its 2 relaxed ones
    assert result.seconds > 0 and result.cpu_seconds > 0
    flows = WARM_UP + 1 + THREADS  # the engine's own threads and the replayed ones
    with sqlite3.connect(tmp_path / "floor" / "store" / STORE_FILE) as conn:
        statuses = dict(conn.execute("SELECT status, count(*) FROM threads GROUP BY status"))
        steps = dict(conn.execute("SELECT thread_id, count(*) FROM checkpoints GROUP BY 1"))
        mail = conn.execute("SELECT count(*) FROM mail").fetchone()[0]
        queued = conn.execute("SELECT count(*) FROM queue").fetchone()[0]
        signed = conn.execute("SELECT count(*) FROM records WHERE key LIKE 'sig#%'").fetchone()
    conn.close()
    assert statuses == {"completed": flows}
    assert set(steps.values()) == {4}
    assert {f"floor-{i:07d}" for i in range(1, THREADS + 1)} <= set(steps)
    assert mail == flows  # each replayed mail key is a new row, not an ignored duplicate
    assert queued == 0  # every replayed queue message was deleted by its recorded id
    assert signed[0] == 2 * flows


def test_recorded_statements_are_one_threads(tmp_path: Path) -> None:
    statements = record_flow(tmp_path / "store")
    assert commits_of(statements) == (4, 2)
    assert any(RECORDED in s for s in statements)
    replayed = for_thread(statements, 42)
    assert not any(RECORDED in s for s in replayed)
    assert [len(s) for s in replayed if "INTO checkpoints" in s] == [
        len(s) for s in statements if "INTO checkpoints" in s
    ]  # the same bytes per row: only the id changed, at the same length
