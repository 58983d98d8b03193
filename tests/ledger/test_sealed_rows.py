"""Sealed values in the embedded store's rows are bytes, not base64 text (`row_bodies.py`,
`backends/packed_bodies.py`): checkpoint, record and mail bodies of an encrypted store are
packed BLOBs (zstd'd where that saves more); a store whose rows hold base64 text (every release
before) reads and verifies as it did, beside packed rows written after."""

from __future__ import annotations

import re
import sqlite3
import zlib
from pathlib import Path

import pytest
import zstandard

from durable_graph.backends.local import local_backend
from durable_graph.backends.local.row_bodies import ZSTD_MAGIC, decode_body, encode_body
from durable_graph.backends.packed_bodies import MAGIC
from durable_graph.errors import CorruptRecord
from durable_graph.keys import Keyring
from durable_graph.verification import verify_thread
from examples.email_approval import graph as email_graph

PROMPT = "pay Jane Roe (IBAN DE44 5001 0517 5407 3249 31)"


BASE64_SEALED = re.compile(rb'"~[A-Za-z0-9+/=_-]{16,}"')


def _unpacked(body: str | bytes) -> bytes:
    """What a body holds once its compression (if any) is off: packed bytes, or JSON."""
    if isinstance(body, str):
        return body.encode()
    if body.startswith(ZSTD_MAGIC):
        return zstandard.ZstdDecompressor().decompress(body)
    return body if body.startswith(MAGIC) else zlib.decompress(body)


def _rows(db: Path, sql: str) -> list[str | bytes]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute(sql)]


def test_sealed_values_are_stored_as_bytes(tmp_path: Path) -> None:
    """Given an encrypted embedded store, when the approval flow runs, then every row holding a
    sealed value (checkpoints, the effect's result, the mail) is a BLOB with no base64 box
    left in it, and the thread, its mail and `verify` read exactly as before."""
    home = tmp_path / "home"
    backend = local_backend(home, encrypt=True)
    app = email_graph.with_backend(backend)
    app.invoke({"user_prompt": PROMPT}, thread_id="tx")
    app.resume("tx", values={"approved": True}, as_node="human_review")
    assert app.get_state("tx").values["user_prompt"] == PROMPT
    assert verify_thread(backend, "tx").ok
    keys = backend.checkpoints.keys
    assert isinstance(keys, Keyring)
    [message] = backend.mailer.read_all(keys).values()  # type: ignore[union-attr]
    assert message.to == ("cfo@example.com",)
    backend.close()

    db = home / "state.db"
    sealed = [
        _unpacked(b)
        for sql in (
            "SELECT body FROM checkpoints",
            "SELECT body FROM records WHERE key LIKE 'fx#%'",
            "SELECT body FROM mail",
        )
        for b in _rows(db, sql)
    ]
    assert len(sealed) == 6  # four steps, the effect's result, the mail
    # no sealed value as base64 text ("~" + base64(box)); the boxes themselves are random
    # bytes, which may hold the two bytes `"~` by chance, so the text form is what is looked for
    assert all(b.startswith(MAGIC) and not BASE64_SEALED.search(b) for b in sealed)


def test_a_store_with_base64_rows_reads_and_verifies_beside_packed_ones(tmp_path: Path) -> None:
    """Given an encrypted thread suspended for approval whose rows were written as text with
    base64 sealed values (as every earlier release wrote them), when it is read, verified and
    approved, then it reads and verifies as before, the old rows stay text, and the rows
    written after are packed."""
    home = tmp_path / "home"
    backend = local_backend(home, encrypt=True)
    app = email_graph.with_backend(backend)
    app.invoke({"user_prompt": PROMPT}, thread_id="tx")
    before = backend.checkpoints.list_checkpoints("tx", newest_first=False)
    backend.close()
    with sqlite3.connect(home / "state.db") as conn:  # the earlier release's rows
        for table, key in (("checkpoints", "step"), ("records", "key"), ("mail", "key")):
            for name, body in conn.execute(f"SELECT {key}, body FROM {table}").fetchall():
                text = decode_body(body)
                text = text.decode() if isinstance(text, bytes) else text
                conn.execute(f"UPDATE {table} SET body = ? WHERE {key} = ?", (text, name))
    old = _rows(home / "state.db", "SELECT body FROM checkpoints ORDER BY step")
    assert all(isinstance(b, str) and '"~' in b for b in old)

    backend = local_backend(home)  # encryption stays on: the key file exists
    app = email_graph.with_backend(backend)
    assert backend.checkpoints.list_checkpoints("tx", newest_first=False) == before
    assert verify_thread(backend, "tx").ok
    app.resume("tx", values={"approved": True}, as_node="human_review")
    assert app.get_state("tx").values["outcome"] == "sent"
    assert verify_thread(backend, "tx").ok
    backend.close()
    rows = _rows(home / "state.db", "SELECT body FROM checkpoints ORDER BY step")
    assert rows[: len(old)] == old
    assert all(_unpacked(b).startswith(MAGIC) for b in rows[len(old) :])


def test_bodies_round_trip_and_a_damaged_packed_row_is_named(tmp_path: Path) -> None:
    """A body without sealed values stays text below 1 KB; one with them is packed; both decode
    to exactly the JSON given. A packed checkpoint row cut short is a `CorruptRecord` at its
    step, not a crash."""
    plain = '{"a":"~not base64!","b":1}'
    assert encode_body(plain) == plain
    box = "~" + "QUJD" * 10
    sealed = '{"e":"' + box + '","f":["' + box + '"]}'
    stored = encode_body(sealed)
    assert isinstance(stored, bytes) and len(stored) < len(sealed)
    assert decode_body(stored) == sealed

    home = tmp_path / "home"
    backend = local_backend(home, encrypt=True)
    email_graph.with_backend(backend).invoke({"user_prompt": PROMPT}, thread_id="tx")
    backend.close()
    with sqlite3.connect(home / "state.db") as conn:
        (body,) = conn.execute("SELECT body FROM checkpoints WHERE step = 1").fetchone()
        cut = _unpacked(body)[:-40]
        conn.execute("UPDATE checkpoints SET body = ? WHERE step = 1", (cut,))
    backend = local_backend(home)
    with pytest.raises(CorruptRecord) as refused:
        backend.checkpoints.get_checkpoint("tx", 1)
    assert refused.value.step == 1
    backend.close()
