"""Row bodies on the embedded store: big rows are kept zlib-compressed, small ones as text,
both read back alike, and a damaged compressed row is named (`row_bodies.py`)."""

from __future__ import annotations

import sqlite3
import zlib
from pathlib import Path

import pytest

from durable_graph.backends.local import local_backend
from durable_graph.backends.local.row_bodies import COMPRESS_FROM, decode_body, encode_body
from durable_graph.canonical import compact_json
from durable_graph.clock import ManualClock
from durable_graph.errors import CorruptRecord
from durable_graph.verification import verify_thread
from tests.helpers import stored_rows
from tests.ledger.graphs import graph as chat_graph

NO_LIMIT = {"recursion_limit": 10_000}


def chat(home: Path, turns: int = 8) -> None:
    backend = local_backend(home, clock=ManualClock())
    chat_graph.with_backend(backend, clock=ManualClock()).invoke(
        {"limit": turns}, NO_LIMIT, thread_id="c"
    )
    backend.close()


def bodies(home: Path) -> dict[int, str | bytes]:
    with sqlite3.connect(home / "state.db") as conn:
        rows = conn.execute("SELECT step, body FROM checkpoints WHERE thread_id='c'").fetchall()
    return {int(step): body for step, body in rows}


def test_big_rows_are_compressed_and_read_back_exactly(tmp_path: Path) -> None:
    """Given a chat appending a 1 KB reply a turn, then every row of a turn is a BLOB smaller
    than its JSON, the thread reads and verifies, and a row rewritten as plain text (how the
    previous version stored every row) reads back the same."""
    home = tmp_path / "home"
    chat(home)
    stored = bodies(home)
    docs = stored_rows(home / "state.db", "c")
    turns = [step for step in stored if step >= 1 and step <= 8]
    assert all(isinstance(stored[s], bytes) for s in turns)
    assert all(len(stored[s]) < len(compact_json(docs[s]).encode()) * 0.8 for s in turns)
    assert all(len(compact_json(docs[s]).encode()) >= COMPRESS_FROM for s in turns)
    backend = local_backend(home)
    before = backend.checkpoints.list_checkpoints("c", newest_first=False)
    assert verify_thread(backend, "c").ok
    backend.close()
    with sqlite3.connect(home / "state.db") as conn:
        for step, doc in docs.items():
            conn.execute(
                "UPDATE checkpoints SET body = ? WHERE thread_id='c' AND step = ?",
                (compact_json(doc), step),
            )
    assert all(isinstance(b, str) for b in bodies(home).values())
    backend = local_backend(home)
    assert backend.checkpoints.list_checkpoints("c", newest_first=False) == before
    assert verify_thread(backend, "c").ok
    backend.close()


def test_a_damaged_compressed_row_is_named(tmp_path: Path) -> None:
    """Given a compressed row whose bytes were cut short, then a read raises `CorruptRecord`
    naming the step and `verify` reports `parse` at that step."""
    home = tmp_path / "home"
    chat(home)
    body = bodies(home)[3]
    assert isinstance(body, bytes)
    with sqlite3.connect(home / "state.db") as conn:
        conn.execute(
            "UPDATE checkpoints SET body = ? WHERE thread_id='c' AND step = 3", (body[:-9],)
        )
    backend = local_backend(home)
    with pytest.raises(CorruptRecord) as refused:
        backend.checkpoints.get_checkpoint("c", 3)
    assert refused.value.step == 3
    report = verify_thread(backend, "c")
    assert (report.ok, report.first_bad_step, report.check) == (False, 3, "parse")
    backend.close()


def test_rows_compressed_with_zlib_defaults_and_with_ours_read_alike() -> None:
    """Given a big row, then what `encode_body` writes is a standard zlib stream no bigger
    than zlib's default compression of it, and a body compressed with zlib's defaults (how the
    previous release wrote big rows: a 32 KB window) reads back the same (`decode_body` takes
    the window from the stream, not from ours)."""
    row = compact_json(
        {"values": {"draft": "please wire USD 250,000 to the new account. " * 60},
         "digests": {f"k{i}": f"{i:064x}" for i in range(40)}}
    )  # fmt: skip
    packed = encode_body(row)
    assert isinstance(packed, bytes)
    assert zlib.decompress(packed) == row.encode() == decode_body(packed)
    assert len(packed) <= len(zlib.compress(row.encode(), 1))
    assert decode_body(zlib.compress(row.encode(), 1)) == row.encode()
    assert decode_body(zlib.compress(row.encode(), 9)) == row.encode()
