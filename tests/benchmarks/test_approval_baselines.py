"""The baselines `bench/approval_throughput.py` sets beside the group-commit row, each run at a
tiny size the way the benchmark runs it (a child process per engine, `run_in_child`): every
thread requested completes (the result says so, and so do the engine's own files, read back
here), and the rows that say 100 in flight really run their flows at once while the
one-at-a-time row does not (LangGraph's checkpoint ids are time-ordered uuid6: a thread's first
and last checkpoint bound its flow). So does durable-graph's own row run from as many OS
threads."""

from __future__ import annotations

import sqlite3
from itertools import pairwise
from pathlib import Path

import pytest

from bench.approval_throughput import IN_FLIGHT, available, run_in_child

THREADS = 12  # fewer than IN_FLIGHT: one wave, every flow in flight at once

pytestmark = pytest.mark.slow


def _installed(*engines: str) -> pytest.MarkDecorator:
    missing = [e for e in engines if not available(e)]
    return pytest.mark.skipif(bool(missing), reason=f"bench extra not installed: {missing}")


def _flows_overlap(db: Path) -> bool:
    """Whether two threads' flows in a LangGraph SQLite database were under way at once."""
    with sqlite3.connect(db) as conn:
        spans = conn.execute(
            "SELECT min(checkpoint_id), max(checkpoint_id) FROM checkpoints GROUP BY thread_id"
        ).fetchall()
    conn.close()
    assert len(spans) == THREADS
    return any(later[0] < earlier[1] for earlier, later in pairwise(sorted(spans)))


def _sent_files(root: Path) -> int:
    return sum(1 for _ in (root / "sent").iterdir())


@_installed("langgraph-sync", "langgraph-sync-threads", "langgraph-aio")
@pytest.mark.parametrize(
    ("engine", "in_flight"),
    [("langgraph-sync", False), ("langgraph-sync-threads", True), ("langgraph-aio", True)],
)
def test_langgraph_rows_complete_every_thread(engine: str, in_flight: bool, tmp_path: Path) -> None:
    from langgraph.checkpoint.sqlite import SqliteSaver

    root = tmp_path / engine
    result = run_in_child(engine, THREADS, root)
    assert result.threads == THREADS
    assert result.seconds > 0 and result.cpu_seconds > 0
    assert result.commits >= 3 * THREADS  # a durable checkpoint per step at least
    assert (f"{IN_FLIGHT} " in result.name) == in_flight
    assert _sent_files(root) == THREADS
    with SqliteSaver.from_conn_string(str(root / "langgraph.db")) as saver:
        for i in range(THREADS):
            latest = saver.get_tuple({"configurable": {"thread_id": f"tx-{i}"}})
            assert latest is not None
            assert latest.checkpoint["channel_values"]["outcome"] == "sent"
            assert latest.metadata["source"] == "loop"
    assert _flows_overlap(root / "langgraph.db") == in_flight


@_installed("dbos-in-flight")
def test_dbos_in_flight_completes_every_workflow(tmp_path: Path) -> None:
    root = tmp_path / "dbos"
    result = run_in_child("dbos-in-flight", THREADS, root)
    assert result.threads == THREADS
    assert result.name == f"DBOS 3 (SQLite, {IN_FLIGHT} in flight)"
    assert _sent_files(root) == THREADS
    with sqlite3.connect(root / "dbos.sqlite") as conn:
        statuses = conn.execute("SELECT status FROM workflow_status").fetchall()
    conn.close()
    assert statuses == [("SUCCESS",)] * THREADS


def test_durable_graph_os_threads_row_completes_every_flow(tmp_path: Path) -> None:
    """The row set beside LangGraph's 100 OS threads: every flow run from the pool of OS
    threads is sent (the child asserts it of each; read back here from the store)."""
    from durable_graph.backends.local import local_backend
    from examples.email_approval import graph as email_graph

    root = tmp_path / "durable-graph-threads"
    result = run_in_child("durable-graph-threads", THREADS, root)
    assert result.threads == THREADS
    assert result.name == f"durable-graph ({IN_FLIGHT} OS threads)"
    assert result.durable >= 2 * THREADS  # a start and an approval, each durable
    backend = local_backend(root)
    try:
        app = email_graph.with_backend(backend)
        outcomes = [app.get_state(f"tx-{i}").values.get("outcome") for i in range(THREADS)]
    finally:
        backend.close()
    assert outcomes == ["sent"] * THREADS
