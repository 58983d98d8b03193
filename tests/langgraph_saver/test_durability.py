"""The saver keeps LangGraph's durability modes: with `durability="sync"` every record is a
durable (fsynced) commit; with `"async"`, LangGraph's default, a task's pending writes commit
without an fsync of their own (the next checkpoint's fsync puts them on disk, WAL order) and
every checkpoint stays durable. A killed process loses nothing either way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langgraph.types import Command

from durable_graph.backends.local import local_backend
from durable_graph.backends.local.db import Database, DurableCommits
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
