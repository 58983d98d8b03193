"""The embedded backend (`backends/local`): what it adds over the conformance suite. A unit of
work whose COMMIT fails leaves no phantom state in the records' cache; the outbox mailer's
message is a row of the store (the file beside it is a copy) and costs no fsync."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from durable_graph.backends.local import local_backend
from durable_graph.backends.local.db import Database
from durable_graph.backends.local.outbox_mailer import OutboxMailer
from durable_graph.backends.local.schema import PAGE_SIZE
from durable_graph.errors import DurableGraphError
from durable_graph.mail import EmailMessage
from examples.email_approval import graph as email_graph
from tests.graphs import slow_graph

LEGACY_STORE = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_v1_store"


def _refuse_next_commit(db: Database) -> None:
    """Make the next COMMIT fail inside SQLite itself: a deferred foreign key left violated is
    only checked at COMMIT, which then refuses and leaves the transaction open."""
    with db.read() as conn:
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("CREATE TABLE IF NOT EXISTS t_parent (id INTEGER PRIMARY KEY)")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS t_child (parent INTEGER REFERENCES t_parent (id) "
            "DEFERRABLE INITIALLY DEFERRED)"
        )


def test_a_failed_commit_leaves_no_phantom_state_in_the_cache(tmp_path: Path) -> None:
    """Given a unit of work that appended step 0 (remembered in memory), when its COMMIT is
    refused by SQLite, then nothing is stored and the process no longer hands the step out
    from memory (`peek`): a step committed by another process must not be built upon it."""
    backend = local_backend(tmp_path / "home")
    db = backend.queue.db  # type: ignore[attr-defined]
    assert isinstance(db, Database)
    app = slow_graph.with_backend(backend)
    app.start({}, thread_id="kept")
    assert backend.checkpoints.peek("kept", 0) is not None  # remembered after a commit
    _refuse_next_commit(db)

    with pytest.raises((sqlite3.IntegrityError, DurableGraphError)), backend.atomic():
        app.start({}, thread_id="phantom")
        assert backend.checkpoints.peek("phantom", 0) is not None
        with db.write() as conn:  # nested: part of the unit, checked only at its COMMIT
            conn.execute("INSERT INTO t_child (parent) VALUES (42)")

    assert backend.checkpoints.peek("phantom", 0) is None
    assert backend.checkpoints.head_checkpoint("phantom") is None
    assert backend.checkpoints.head_checkpoint("kept") is not None
    with db.read() as conn:
        assert not conn.in_transaction  # the refused transaction was rolled back
    backend.close()


def test_the_mail_is_a_row_and_the_file_a_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given the embedded backend, when a message is sent twice with one key, then one row
    holds the first message, the outbox file shows it, and sending fsynced nothing."""
    backend = local_backend(tmp_path / "home")
    mailer = backend.mailer
    assert isinstance(mailer, OutboxMailer)
    first = EmailMessage(to=("cfo@example.com",), subject="Pay", body="wire it")
    second = EmailMessage(to=("cfo@example.com",), subject="Other", body="no")
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", synced.append)
    assert mailer.send(first, idempotency_key="k-1") == "k-1"
    assert mailer.send(second, idempotency_key="k-1") == "k-1"
    assert synced == []
    assert mailer.read_all() == {"k-1": first}
    mailer.close()  # the file copy is written in the background: wait for it
    [path] = (tmp_path / "home" / "outbox" / "sent").iterdir()
    assert path.name == "k-1.json" and '"subject": "Pay"' in path.read_text()
    backend.close()


def test_an_approval_thread_fsyncs_no_file_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given the seed flow on the embedded store (its signing key already made: a key file is
    synced once, when it is created), when a thread runs start to finish, then the only fsyncs
    are SQLite's (no file of the outbox or the payloads is synced by Python), and the email it
    sent is in the store."""
    backend = local_backend(tmp_path / "home")
    app = email_graph.with_backend(backend)
    app.invoke({"user_prompt": "warm"}, thread_id="t-0")
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", synced.append)
    app.invoke({"user_prompt": "pay"}, thread_id="t-1")
    app.resume("t-1", values={"approved": True}, as_node="human_review")
    assert app.get_state("t-1").values["outcome"] == "sent"
    mailer = backend.mailer
    assert isinstance(mailer, OutboxMailer)
    assert len(mailer.read_all()) == 1  # t-0 is still waiting
    assert synced == []
    backend.close()


def test_the_mail_row_commits_with_the_effect_result(tmp_path: Path) -> None:
    """Given the seed flow on the embedded store, when its `send_email` node mails inside
    `ctx.step`, then the mail row is written by the transaction that writes the effect's result
    (one relaxed commit: the send and the record of it commit together), after the claim's."""
    backend = local_backend(tmp_path / "home")
    db = backend.queue.db  # type: ignore[attr-defined]
    assert isinstance(db, Database)
    app = email_graph.with_backend(backend)
    app.invoke({"user_prompt": "pay"}, thread_id="t-1")
    transactions: list[list[str]] = []

    def trace(statement: str) -> None:
        if statement.startswith("BEGIN"):
            transactions.append([])
        elif transactions and statement.startswith(("INSERT", "UPDATE", "DELETE")):
            transactions[-1].append(" ".join(statement.split()[:5]))

    db.trace(trace)
    app.resume("t-1", values={"approved": True}, as_node="human_review")
    db.trace(None)
    assert app.get_state("t-1").values["outcome"] == "sent"
    [mailing] = [t for t in transactions if any("INTO mail" in w for w in t)]
    assert len(mailing) == 2 and mailing[1].startswith("UPDATE records"), transactions
    claims = [t for t in transactions if t == ["INSERT OR IGNORE INTO records"]]
    assert claims and transactions.index(claims[0]) < transactions.index(mailing), transactions
    backend.close()


def test_a_new_store_has_page_size_pages_and_no_sequence_table(tmp_path: Path) -> None:
    """Given a new embedded store, then its pages are `PAGE_SIZE` bytes and no table keeps an
    AUTOINCREMENT sequence (each was WAL bytes in every commit), and the seed flow runs on it."""
    backend = local_backend(tmp_path / "home")
    app = email_graph.with_backend(backend)
    app.invoke({"user_prompt": "pay"}, thread_id="t-1")
    app.resume("t-1", values={"approved": True}, as_node="human_review")
    assert app.get_state("t-1").values["outcome"] == "sent"
    backend.close()
    with sqlite3.connect(tmp_path / "home" / "state.db") as conn:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_schema")}
        threads = conn.execute("SELECT sql FROM sqlite_schema WHERE name = 'threads'").fetchone()
    assert "queue" in tables and "sqlite_sequence" not in tables
    # The heads: one b-tree keyed by thread id and one status index (db.py), no other.
    assert "WITHOUT ROWID" in threads[0]
    assert {t for t in tables if "threads" in t} == {"threads", "threads_by_status"}


def test_an_existing_store_keeps_its_page_size_and_tables(tmp_path: Path) -> None:
    """Given a store written by an earlier release (4 KB pages, AUTOINCREMENT queue ids), when
    it is opened and a thread runs on it, then it keeps its page size and its sequence, and
    queue ids keep counting up from it."""
    home = tmp_path / "home"
    shutil.copytree(LEGACY_STORE, home)
    with sqlite3.connect(home / "state.db") as conn:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == 4096
        old = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'queue'").fetchone()
        # The previous release's listing index (this fixture predates it).
        conn.execute("CREATE INDEX threads_by_update ON threads (updated_at, thread_id)")
    backend = local_backend(home)
    app = email_graph.with_backend(backend)
    app.invoke({"user_prompt": "pay"}, thread_id="t-1")
    app.resume("t-1", values={"approved": True}, as_node="human_review")
    assert app.get_state("t-1").values["outcome"] == "sent"
    backend.close()
    with sqlite3.connect(home / "state.db") as conn:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == 4096
        seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'queue'").fetchone()
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_schema")}
    assert seq[0] == old[0] + 2  # two tasks queued (draft, send), numbered after the old ones
    # Its listing index of every thread is dropped (none reads it); listings still see all.
    assert "threads_by_update" not in indexes and "threads_by_status" in indexes
    backend = local_backend(home)
    listed = {t.thread_id for t in backend.checkpoints.page_threads(limit=500).threads}
    assert "t-1" in listed and listed == {t.thread_id for t in backend.checkpoints.list_threads()}
    backend.close()
