"""Group sync in the embedded store (`backends/local/db.py`): a durable commit's fsync runs after
the connection's lock is released and covers every commit appended before it began, and nothing
of this process acts on a commit before it is on disk (the queue's hand-over, after-commit
callbacks). Real files, real threads: the test holds the sync lock to make an fsync wait."""

from __future__ import annotations

import errno
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from durable_graph.backends.local import db as db_module
from durable_graph.backends.local.db import Database
from durable_graph.backends.local.sqlite_queue import SqliteQueue
from durable_graph.backends.local.sqlite_store import SqliteCheckpointStore
from durable_graph.errors import StorageFull
from tests.helpers import checkpoint, message

INSERT = "INSERT INTO mail (key, body) VALUES (?, '{}')"
WAIT = 10.0  # seconds a thread may take to get where the test waits for it


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "state.db")
    yield database
    database.close()


def _keys(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT key FROM mail ORDER BY key")]


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def _started(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def _write(db: Database, key: str) -> Callable[[], None]:
    def write() -> None:
        with db.write() as conn:
            conn.execute(INSERT, (key,))

    return write


def test_concurrent_durable_writes_all_commit_and_run_their_callbacks_once_synced(
    db: Database,
) -> None:
    """Given 16 threads each making 25 durable writes at once, then every row is stored, every
    after-commit callback ran once and saw its own commit synced (the WAL position a trace of
    its COMMIT recorded), and no more fsyncs were made than commits."""
    positions = threading.local()

    def traced(sql: str) -> None:  # under the lock, just before the COMMIT counts
        if sql.startswith("COMMIT"):
            positions.mine = db.appended() + 1

    db.trace(traced)
    before = db.fsyncs
    seen: list[tuple[int, int]] = []  # (the commit's position, synced when its callback ran)

    def ran() -> None:  # in the committing thread, after its commit
        seen.append((positions.mine, db.synced()))

    def writes(n: int) -> Callable[[], None]:
        def write() -> None:
            for i in range(25):
                with db.write() as conn:
                    conn.execute(INSERT, (f"k-{n:02}-{i:02}",))
                    db.after_commit(ran)

        return write

    threads = [_started(writes(n)) for n in range(16)]
    for thread in threads:
        thread.join(WAIT)
    db.trace(None)
    assert len(_keys(db.path)) == 16 * 25
    assert len(seen) == 16 * 25
    assert sorted(position for position, _ in seen) == list(range(1, 16 * 25 + 1))
    assert all(synced >= position for position, synced in seen), seen
    assert db.synced() == db.appended() == 16 * 25
    assert 1 <= db.fsyncs - before <= 16 * 25


def test_a_commit_another_threads_fsync_covered_is_not_synced_again(db: Database) -> None:
    """Given the fsync held back (the test holds the sync lock), when two threads commit, then
    the second commits while the first waits to sync (the write lock is free), and once let go
    one fsync covers both: two commits, one fsync."""
    before = db.fsyncs
    with db._sync_lock:
        first = _started(_write(db, "k-1"))
        _until(lambda: db.appended() == 1)
        second = _started(_write(db, "k-2"))
        _until(lambda: db.appended() == 2)  # committed while the first waits for its sync
        assert first.is_alive() and second.is_alive()  # neither returned before its sync
        assert db.synced() == 0
    first.join(WAIT)
    second.join(WAIT)
    assert (db.fsyncs - before, db.synced()) == (1, 2)
    assert _keys(db.path) == ["k-1", "k-2"]


def test_the_queue_hands_out_a_message_only_once_the_commit_that_queued_it_is_synced(
    db: Database,
) -> None:
    """Given a send whose commit is made but whose fsync is held back, when another thread of
    the process receives, then it leases the message but returns it only after the sync."""
    queue = SqliteQueue(db)
    received: list[tuple[str, int]] = []

    def receive() -> None:
        for delivery in queue.receive():
            received.append((delivery.message.dedup_id, db.synced()))

    with db._sync_lock:
        sender = _started(lambda: queue.send([message("t-1", 1)]))
        _until(lambda: db.appended() == 1)
        receiver = _started(receive)
        _until(lambda: db.appended() == 2)  # its lease (a relaxed commit) is made
        receiver.join(0.2)
        assert receiver.is_alive() and received == []  # held: its queuing commit is not synced
    sender.join(WAIT)
    receiver.join(WAIT)
    assert received == [("t-1:1:1:a", 2)]  # the sync covered the lease too


def test_a_head_another_thread_committed_is_read_only_once_it_is_synced(db: Database) -> None:
    """Given a head whose commit is made but whose fsync is held back, when another thread of
    the process reads the thread's head (what `invoke` returns, `get_state` shows), then the
    read returns only after the sync."""
    store = SqliteCheckpointStore(db)
    read: list[tuple[int, int]] = []

    def head() -> None:
        found = store.head_checkpoint("t-1")
        assert found is not None
        read.append((found.step, db.synced()))

    with db._sync_lock:
        writer = _started(lambda: store.append_checkpoint(checkpoint("t-1", 0)))
        _until(lambda: db.appended() == 1)
        reader = _started(head)
        reader.join(0.2)
        assert reader.is_alive() and read == []
    writer.join(WAIT)
    reader.join(WAIT)
    assert read == [(0, 1)]


def test_inside_a_transaction_durable_makes_its_commit_sync_instead_of_waiting(
    db: Database,
) -> None:
    """Given a commit whose fsync is held back, when another thread's relaxed transaction asks
    for `durable` (a receive inside a unit of work), then it goes on without waiting under the
    lock, and its commit becomes a durable one, returning only once synced."""
    statements: list[str] = []
    db.trace(statements.append)
    asked = threading.Event()

    def relaxed() -> None:
        with db.write(durable=False) as conn:
            conn.execute(INSERT, ("k-2",))
            db.durable()
            asked.set()

    with db._sync_lock:
        first = _started(_write(db, "k-1"))
        _until(lambda: db.appended() == 1)
        second = _started(relaxed)
        assert asked.wait(WAIT)  # `durable` inside the transaction did not wait for the sync
        _until(lambda: db.appended() == 2)
        second.join(0.2)
        assert second.is_alive()  # its commit waits for the sync now
    first.join(WAIT)
    second.join(WAIT)
    db.trace(None)
    assert [s for s in statements if s.startswith("COMMIT")] == ["COMMIT", "COMMIT"]
    assert db.synced() == 2


def test_close_syncs_a_commit_another_thread_is_about_to_sync(tmp_path: Path) -> None:
    """Given a commit whose fsync is held back, when the store is closed meanwhile, then the
    committing thread returns without an error (its commit synced by `close`, one fsync in
    all), and the row is in the file."""
    db = Database(tmp_path / "state.db")
    errors: list[BaseException] = []

    def write() -> None:
        try:
            _write(db, "k-1")()
        except BaseException as exc:  # pragma: no cover - what the test fails on
            errors.append(exc)

    before = db.fsyncs
    with db._sync_lock:
        writer = _started(write)
        _until(lambda: db.appended() == 1)
        closer = _started(db.close)
        closer.join(0.1)
        assert closer.is_alive()  # waits for the sync lock too
    writer.join(WAIT)
    closer.join(WAIT)
    assert not writer.is_alive() and not closer.is_alive()
    assert errors == []
    assert (db.fsyncs - before, db.synced()) == (1, 1)
    assert _keys(tmp_path / "state.db") == ["k-1"]


def test_close_syncs_a_durable_commit_left_unsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a durable commit whose fsync failed (so it is made and not synced), when the
    store is closed, then `close` syncs it before closing the WAL."""
    db = Database(tmp_path / "state.db")
    monkeypatch.setattr(db_module, "_fdatasync", _full)
    with pytest.raises(StorageFull):
        _write(db, "k-1")()
    monkeypatch.undo()
    before = db.fsyncs
    db.close()
    assert (db.fsyncs - before, db.synced(), db.appended()) == (1, 1, 1)


def _full(fd: int) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_sync_raises_drops_the_callbacks_and_the_next_write_syncs(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a disk whose fdatasync fails (ENOSPC), when a durable write commits, then it
    raises the store's transient error and its after-commit callback never runs; the next
    write, the disk back, syncs both commits."""
    ran: list[str] = []
    monkeypatch.setattr(db_module, "_fdatasync", _full)
    with pytest.raises(StorageFull), db.write() as conn:
        conn.execute(INSERT, ("k-1",))
        db.after_commit(lambda: ran.append("k-1"))
    assert (ran, db.synced(), db.appended()) == ([], 0, 1)
    monkeypatch.undo()
    with db.write() as conn:
        conn.execute(INSERT, ("k-2",))
        db.after_commit(lambda: ran.append("k-2"))
    assert (ran, db.synced()) == (["k-2"], 2)
    assert _keys(db.path) == ["k-1", "k-2"]


def test_relaxed_commits_wait_for_no_sync(db: Database) -> None:
    """A relaxed commit counts in the WAL but asks for no sync: `durable` after it (and after
    a synced durable one) has nothing to do, and no fsync is made."""
    _write(db, "k-1")()
    before = db.fsyncs
    with db.write(durable=False) as conn:
        conn.execute(INSERT, ("k-2",))
    db.durable()
    assert (db.fsyncs - before, db.synced(), db.appended()) == (0, 1, 2)
