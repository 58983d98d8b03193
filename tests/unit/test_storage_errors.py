"""A full disk, a locked store: translated once into `TransientError`s, and never a failed
thread or an uncaught exception in the worker (the real-disk test: tests/e2e/test_disk_full.py)."""

from __future__ import annotations

import errno
import logging
import sqlite3
from pathlib import Path
from typing import Any, NoReturn

import pytest
from pydantic import BaseModel

from durable_graph import END, START, StateGraph
from durable_graph.backends.local.db import Database
from durable_graph.backends.local.sqlite_store import SqliteCheckpointStore
from durable_graph.backends.local.storage_errors import (
    storage_errors,
    translate,
)
from durable_graph.backends.memory import memory_backend
from durable_graph.engine import Engine
from durable_graph.errors import PermanentTaskError, StorageFull, StoreBusy


class S(BaseModel):
    n: int = 0


def bump(state: S) -> dict[str, Any]:
    return {"n": state.n + 1}


builder = StateGraph(S)
builder.add_node("bump", bump)
builder.add_edge(START, "bump")
builder.add_edge("bump", END)
graph = builder.compile(name="tests.unit.test_storage_errors:graph")


def sqlite_error(code: int, text: str) -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError(text)
    exc.sqlite_errorcode = code
    return exc


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), StorageFull),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), StorageFull),
        (OSError(errno.EFBIG, "File too large"), StorageFull),
        (sqlite_error(sqlite3.SQLITE_FULL, "database or disk is full"), StorageFull),
        (sqlite_error(sqlite3.SQLITE_IOERR_WRITE, "disk I/O error"), StorageFull),
        (sqlite_error(sqlite3.SQLITE_BUSY, "database is locked"), StoreBusy),
        (sqlite_error(sqlite3.SQLITE_LOCKED, "database table is locked"), StoreBusy),
        (OSError(errno.EACCES, "Permission denied"), None),
        (sqlite_error(sqlite3.SQLITE_ERROR, "no such table: x"), None),
    ],
)
def test_storage_conditions_are_transient(exc: BaseException, expected: type | None) -> None:
    translated = translate(exc, "writing")
    assert (type(translated) if translated is not None else None) is expected


def test_the_translation_keeps_its_cause() -> None:
    cause = OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(StorageFull) as caught, storage_errors("writing payload"):
        raise cause
    assert caught.value.__cause__ is cause


def test_the_embedded_store_translates_a_locked_database(tmp_path: Path) -> None:
    """A second connection holds the write lock past the busy timeout: StoreBusy."""
    db = Database(tmp_path / "state.db")
    with db.read() as conn:
        conn.execute("PRAGMA busy_timeout=50")
    blocker = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreBusy):
            SqliteCheckpointStore(db).put_record("t", "k", {"v": 1}, expected_version=None)
    finally:
        blocker.rollback()
        blocker.close()
    assert SqliteCheckpointStore(db).put_record("t", "k", {"v": 1}, expected_version=None)


def fails_with(exc: Exception) -> Any:
    def raiser(*_: Any, **__: Any) -> NoReturn:
        raise exc

    return raiser


def test_a_transient_error_releases_the_task_and_logs_one_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    app = graph.with_backend(memory_backend())
    app.start({}, thread_id="t1")
    worker = app.worker()
    monkeypatch.setattr(Engine, "execute", fails_with(StorageFull("disk full")))
    delivery = worker.claim(None)[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert worker.handle(delivery) is None
    shown = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert shown == ["transient, retrying later: disk full"]
    assert not any(r.exc_info for r in caplog.records)
    assert app.backend.queue.depth() == 1
    assert app.get_state("t1").status == "running"


def test_a_failure_that_cannot_be_recorded_leaves_the_thread_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The failure write hits a full disk: no exception escapes, the message is released,
    and the thread (still running) finishes when the condition clears."""
    app = graph.with_backend(memory_backend())
    app.start({}, thread_id="t1")
    worker = app.worker()
    with monkeypatch.context() as patch:
        patch.setattr(Engine, "execute", fails_with(PermanentTaskError("bad message")))
        patch.setattr(Engine, "fail_thread", fails_with(StorageFull("disk full")))
        assert worker.handle(worker.claim(None)[0]) is None
    assert app.backend.queue.depth() == 1
    assert app.get_state("t1").status == "running"
    assert app.run_until_settled("t1").status == "completed"
