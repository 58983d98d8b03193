"""The embedded thread heads' columns (schema.py `THREAD_COLUMNS`): a head write compares the stored
`head_step` and carries `created_at` and `origin` from columns, without parsing the stored body.
A store the release before them wrote (`tests/fixtures/head_columns_store`, made by
`head_columns_generate.py`) gets the columns on its first open, empty; its heads are read from
their bodies until their next write, which fills them, and every thread still verifies."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from durable_graph.backends.local import local_backend
from durable_graph.checkpoint import ThreadRecord
from durable_graph.verification import verify_thread
from examples.email_approval import graph as email_graph

FIXTURE = Path(__file__).parent.parent / "fixtures" / "head_columns_store"


def _rows(db: Path) -> dict[str, tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT thread_id, head_step, created_at, origin FROM threads")
        return {str(r[0]): tuple(r[1:]) for r in rows}


def _stored(db: Path) -> dict[str, ThreadRecord]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT body FROM threads").fetchall()
    return {t.thread_id: t for t in (ThreadRecord.model_validate_json(r[0]) for r in rows)}


def test_a_store_from_before_the_columns_reads_moves_and_verifies(tmp_path: Path) -> None:
    """Given the store an earlier release wrote (a suspended thread, a completed one, and a
    fork of the suspended one: a head with an origin)
    When this release opens it, resumes both suspended threads, and writes an older head
    Then the columns exist and are filled by each thread's next head write only; each head
    keeps its creation time and origin and moves forward, never back; every thread
    verifies; and a store opened again is not altered."""
    home = tmp_path / "home"
    shutil.copytree(FIXTURE, home)
    db = home / "state.db"
    before = _stored(db)
    backend = local_backend(home)
    assert _rows(db) == {tid: (None, None, None) for tid in ("done", "fork", "waiting")}
    app = email_graph.with_backend(backend)
    for tid in ("waiting", "fork"):
        app.resume(tid, values={"approved": True}, as_node="human_review")
        assert app.get_state(tid).values["outcome"] == "sent"
    store = backend.checkpoints
    older = before["done"].model_copy(update={"head_step": 2, "status": "running"})
    assert not store.advance_thread(older)
    for tid in ("waiting", "fork", "done"):
        head = store.get_thread(tid)
        assert head is not None, tid
        assert (head.created_at, head.origin) == (before[tid].created_at, before[tid].origin)
        assert head.status == "completed"
        assert verify_thread(backend, tid).ok, tid
    backend.close()
    rows = _rows(db)
    origin = before["fork"].origin
    assert origin is not None
    assert rows["fork"] == (2, before["fork"].created_at, origin.model_dump_json())
    assert rows["waiting"] == (3, before["waiting"].created_at, None)
    assert rows["done"] == (None, None, None)  # the late head lost: nothing written
    assert _stored(db)["done"] == before["done"]
    local_backend(home).close()  # the columns are there: nothing more to add
    assert _rows(db) == rows


def test_a_new_store_has_the_columns_and_fills_them(tmp_path: Path) -> None:
    """Given a new store, when a thread runs to its end, then its head row's columns hold its
    head step, creation time and (no) origin, as its body does."""
    backend = local_backend(tmp_path / "home")
    app = email_graph.with_backend(backend)
    app.invoke({"user_prompt": "pay"}, thread_id="t-1")
    app.resume("t-1", values={"approved": True}, as_node="human_review")
    backend.close()
    head = _stored(tmp_path / "home" / "state.db")["t-1"]
    assert _rows(tmp_path / "home" / "state.db") == {"t-1": (3, head.created_at, None)}
    assert head.head_step == 3 and head.status == "completed"
