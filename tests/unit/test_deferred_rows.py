"""`Database.defer` (rows written by the store's next write transaction, `backends/local/db.py`)
and the outbox's background file copies (`file_copies.py`)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from durable_graph.backends.local.db import Database
from durable_graph.backends.local.file_copies import FileCopies

INSERT = "INSERT OR IGNORE INTO mail (key, body) VALUES (?, ?)"


def _keys(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT key FROM mail ORDER BY key")]


def test_a_deferred_row_is_written_by_the_next_transaction_and_survives_its_rollback(
    tmp_path: Path,
) -> None:
    """Given a deferred row, when the next write transaction rolls back, then the row is not
    stored and its callback not run; the transaction after that writes it and runs it once."""
    db = Database(tmp_path / "state.db")
    ran: list[str] = []
    db.defer(INSERT, ("k-1", "{}"), lambda: ran.append("k-1"))
    assert _keys(db.path) == []
    with pytest.raises(RuntimeError), db.write():
        raise RuntimeError("the carrier fails")
    assert (_keys(db.path), ran) == ([], [])
    with db.write(durable=False) as conn:
        conn.execute("INSERT INTO outbox (thread_id, step, body) VALUES ('t', 1, '{}')")
    assert (_keys(db.path), ran) == (["k-1"], ["k-1"])
    with db.write():  # nothing deferred any more
        pass
    assert ran == ["k-1"]
    db.close()


def test_a_row_deferred_inside_a_transaction_is_part_of_it_and_close_writes_the_rest(
    tmp_path: Path,
) -> None:
    """Given a write transaction open on this thread, a row deferred in it is written by it
    (its callback only if it inserted); a row deferred outside any is written by `close`."""
    db = Database(tmp_path / "state.db")
    ran: list[str] = []
    with db.write():
        db.defer(INSERT, ("k-1", "{}"), lambda: ran.append("first"))
        db.defer(INSERT, ("k-1", "{}"), lambda: ran.append("again"))  # ignored: no callback
        assert ran == []
    assert (_keys(db.path), ran) == (["k-1"], ["first"])
    db.defer(INSERT, ("k-2", "{}"))
    db.close()
    assert _keys(tmp_path / "state.db") == ["k-1", "k-2"]


def test_file_copies_run_in_order_in_batches_and_drain_waits_for_them() -> None:
    """Given jobs handed to the outbox's copy writer (some failing), then none runs on the
    caller's thread; they run in one batch a moment later, in the order handed over, a failing
    job not stopping the ones after it; `drain` waits for a batch being written, and runs what
    is pending itself."""
    copies = FileCopies(batch_seconds=0.01)
    gate, started = threading.Event(), threading.Event()
    ran: list[tuple[int, bool]] = []
    caller = threading.get_ident()

    def fail() -> None:
        raise OSError("disk full")

    def wait() -> None:
        started.set()
        gate.wait()

    def append(i: int) -> None:
        copies.put(lambda: ran.append((i, threading.get_ident() == caller)))

    copies.put(wait)
    for i in range(3):
        append(i)
        copies.put(fail)
    assert started.wait(timeout=10)  # a batch is being written, off this thread
    assert copies.drain(timeout=0.2) is False  # it waits on the gate
    gate.set()
    assert copies.drain() is True
    assert ran == [(0, False), (1, False), (2, False)]
    later = FileCopies(batch_seconds=60)
    later.put(lambda: ran.append((3, threading.get_ident() == caller)))
    assert ran[-1][0] == 2 and later.drain() is True and ran[-1] == (3, True)
