"""The embedded store's fsync budget (DESIGN.md §9): a seed approval thread (run → suspend →
approve → complete) takes at most 4 durable commits; leases, effect claims and results and the
notification ride along without an fsync of their own (db.py, outbox.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from durable_graph.backends.local import db as db_module
from durable_graph.backends.local import local_backend
from durable_graph.backends.local.commit_count import DurableCommits
from durable_graph.backends.local.db import Database
from examples.email_approval import graph as email_graph


def test_an_approval_thread_takes_at_most_four_durable_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given the embedded store, when the seed flow runs start to finish, then it commits
    durably at most 4 times, and every relaxed write it made is on the chain's side of them
    (the effect result is read back after the run)."""
    backend = local_backend(tmp_path / "home")
    db = backend.queue.db  # type: ignore[attr-defined]
    assert isinstance(db, Database)
    counter = DurableCommits()
    db.trace(counter)
    app = email_graph.with_backend(backend)
    app.invoke({"user_prompt": "pay"}, thread_id="t-1")
    app.resume("t-1", values={"approved": True}, as_node="human_review")
    db.trace(None)
    assert app.get_state("t-1").values["outcome"] == "sent"
    assert counter.durable <= 4, counter
    assert counter.relaxed >= 1, counter  # the effect claim at least
    backend.close()


def test_durable_writes_sync_the_wal_themselves_and_relaxed_ones_never(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given the embedded store (synchronous=NORMAL: SQLite syncs nothing at a commit), when
    the seed flow runs and then a durable and a relaxed write are made, then each durable
    commit synced the WAL file once and each relaxed one not at all, and no statement
    switched the `synchronous` setting."""
    backend = local_backend(tmp_path / "home")
    db = backend.queue.db  # type: ignore[attr-defined]
    assert isinstance(db, Database)
    with db.read() as conn:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    synced: list[int] = []
    real = db_module._fdatasync

    def counting(fd: int) -> None:  # a spy: the real sync, counted
        assert os.fstat(fd).st_ino == (tmp_path / "home" / "state.db-wal").stat().st_ino
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(db_module, "_fdatasync", counting)
    counter = DurableCommits()
    statements: list[str] = []

    def traced(sql: str) -> None:
        counter(sql)
        statements.append(sql)

    db.trace(traced)
    app = email_graph.with_backend(backend)
    app.invoke({"user_prompt": "pay"}, thread_id="t-1")
    app.resume("t-1", values={"approved": True}, as_node="human_review")
    with db.write() as conn:
        conn.execute("INSERT INTO mail (key, body) VALUES ('k1', '{}')")
    with db.write(durable=False) as conn:
        conn.execute("INSERT INTO mail (key, body) VALUES ('k2', '{}')")
    db.trace(None)
    assert counter.durable >= 2 and counter.relaxed >= 2, counter
    assert len(synced) == counter.durable
    assert not [s for s in statements if "SYNCHRONOUS" in s.upper()]
    backend.close()
