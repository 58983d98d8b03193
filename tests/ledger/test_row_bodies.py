"""Row bodies on the embedded store: big rows are kept zstd-compressed, small ones as text,
all read back alike (zlib rows of earlier releases too), and a damaged compressed row is named
(`row_bodies.py`)."""

from __future__ import annotations

import sqlite3
import zlib
from pathlib import Path

import pytest
import zstandard

from durable_graph.backends.local import local_backend
from durable_graph.backends.local.row_bodies import (
    COMPRESS_FROM,
    ZSTD_MAGIC,
    decode_body,
    encode_body,
)
from durable_graph.canonical import compact_json
from durable_graph.clock import ManualClock
from durable_graph.errors import CorruptRecord
from durable_graph.verification import verify_thread
from examples.email_approval import graph as email_graph
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


def rewrite(home: Path, bodies: dict[int, str | bytes]) -> None:
    with sqlite3.connect(home / "state.db") as conn:
        for step, body in bodies.items():
            conn.execute(
                "UPDATE checkpoints SET body = ? WHERE thread_id='c' AND step = ?", (body, step)
            )


def test_big_rows_are_compressed_and_read_back_exactly(tmp_path: Path) -> None:
    """Given a chat appending a 1 KB reply a turn, then every row of a turn is a zstd frame
    smaller than its JSON, the thread reads and verifies, and the rows rewritten as plain text
    (how the first versions stored every row) or as zlib streams (how releases before zstd
    rows compressed them) read back the same."""
    home = tmp_path / "home"
    chat(home)
    stored = bodies(home)
    docs = stored_rows(home / "state.db", "c")
    turns = [step for step in stored if step >= 1 and step <= 8]
    assert all(isinstance(stored[s], bytes) for s in turns)
    assert all(isinstance(b, bytes) and b.startswith(ZSTD_MAGIC) for b in map(stored.get, turns))
    assert all(len(stored[s]) < len(compact_json(docs[s]).encode()) * 0.8 for s in turns)
    assert all(len(compact_json(docs[s]).encode()) >= COMPRESS_FROM for s in turns)
    backend = local_backend(home)
    before = backend.checkpoints.list_checkpoints("c", newest_first=False)
    assert verify_thread(backend, "c").ok
    backend.close()
    texts: dict[int, str | bytes] = {step: compact_json(doc) for step, doc in docs.items()}
    zlibs: dict[int, str | bytes] = {
        step: zlib.compress(compact_json(doc).encode(), 1) for step, doc in docs.items()
    }
    for earlier in (texts, zlibs):
        rewrite(home, earlier)
        assert bodies(home) == earlier
        backend = local_backend(home)
        assert backend.checkpoints.list_checkpoints("c", newest_first=False) == before
        assert verify_thread(backend, "c").ok
        backend.close()


def test_rows_of_small_values_stay_text_whatever_their_digests(tmp_path: Path) -> None:
    """Given the seed approval flow, then its input and completion rows (10 and 3 changes of
    short strings: over `COMPRESS_FROM` bytes of JSON, mostly digests) are stored as text,
    its suspension's row (the draft twice, in the state and the recorded LLM response) as a
    zstd frame, and the thread reads back and verifies."""
    home = tmp_path / "home"
    backend = local_backend(home, clock=ManualClock())
    app = email_graph.with_backend(backend, clock=ManualClock())
    app.invoke({"user_prompt": "pay supplier 3"}, thread_id="c")
    app.resume("c", values={"approved": True}, as_node="human_review")
    stored = bodies(home)
    docs = stored_rows(home / "state.db", "c")
    sizes = {step: len(compact_json(doc)) for step, doc in docs.items()}
    assert sizes[0] >= COMPRESS_FROM and sizes[3] >= COMPRESS_FROM
    assert isinstance(stored[0], str) and isinstance(stored[3], str)
    assert isinstance(stored[1], bytes) and stored[1].startswith(ZSTD_MAGIC)
    assert app.get_state("c").values["outcome"] == "sent"
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


def test_big_rows_are_zstd_frames_and_zlib_rows_of_earlier_releases_read_alike() -> None:
    """Given a big row, then what `encode_body` writes is a standard zstd frame (any zstd
    reader inflates it) no bigger than zlib's level 1 of it, and the zlib streams earlier
    releases wrote (zlib's defaults: a 32 KB window; a 16 KB window at memory level 5) read
    back the same (`decode_body` takes the window from the stream)."""
    row = compact_json(
        {"values": {"draft": "please wire USD 250,000 to the new account. " * 60},
         "digests": {f"k{i}": f"{i:064x}" for i in range(40)}}
    )  # fmt: skip
    packed = encode_body(row)
    assert isinstance(packed, bytes) and packed.startswith(ZSTD_MAGIC)
    assert zstandard.ZstdDecompressor().decompress(packed) == row.encode() == decode_body(packed)
    assert len(packed) <= len(zlib.compress(row.encode(), 1))
    assert decode_body(zlib.compress(row.encode(), 1)) == row.encode()
    assert decode_body(zlib.compress(row.encode(), 9)) == row.encode()
    windowed = zlib.compressobj(1, zlib.DEFLATED, 14, 5)
    assert decode_body(windowed.compress(row.encode()) + windowed.flush()) == row.encode()
