"""Checkpoint and record bodies on PostgreSQL are `bytea` with their sealed values as bytes,
not base64 text (`backends/packed_bodies.py`, migration 2); a store written before (text
bodies, base64 inside) is upgraded in place and every row it had still reads and verifies,
beside the packed rows written after."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg

from durable_graph.backends.packed_bodies import MAGIC, pack, unpack
from durable_graph.backends.postgres import postgres_backend
from durable_graph.backends.postgres.migrations import _VERSIONS, LATEST, MIGRATIONS
from durable_graph.keys import LocalKeyFile
from durable_graph.verification import verify_thread
from examples.email_approval import graph as email_graph
from tests.postgres.server import fresh_schema_uri

PROMPT = "pay Jane Roe (IBAN DE44 5001 0517 5407 3249 31)"
# A sealed value as base64 text ("~" + base64(box)). The packed boxes are random bytes, which may
# hold the two bytes `"~` by chance (1 run in ~10 failed on that), so the text form is looked for.
BASE64_SEALED = re.compile(rb'"~[A-Za-z0-9+/=_-]{16,}"')


def test_sealed_values_are_stored_as_bytes(pg_uri: str, tmp_path: Path) -> None:
    """Given an encrypted store
    When the approval flow runs
    Then every checkpoint body with a sealed value is packed (no base64 box left in it), the
    sealed record bodies too, and reads and `verify` see the same JSON as before packing."""
    backend = postgres_backend(pg_uri, kek=LocalKeyFile(tmp_path / "kek"))
    app = email_graph.with_backend(backend)
    app.invoke({"user_prompt": PROMPT}, thread_id="tx")
    app.resume("tx", values={"approved": True}, as_node="human_review")
    assert app.get_state("tx").values["user_prompt"] == PROMPT
    assert verify_thread(backend, "tx").ok
    backend.close()

    with psycopg.connect(pg_uri) as conn:
        bodies = [bytes(b) for (b,) in conn.execute("SELECT body FROM checkpoints")]
        records = [bytes(b) for (b,) in conn.execute("SELECT body FROM records")]
    assert bodies and all(b.startswith(MAGIC) and not BASE64_SEALED.search(b) for b in bodies)
    sealed = [r for r in records if b"$sealed" in r]
    assert sealed and all(r.startswith(MAGIC) and not BASE64_SEALED.search(r) for r in sealed)
    for body in bodies:
        assert pack(unpack(body)) == body


def test_a_store_written_with_text_bodies_keeps_reading_after_the_upgrade(
    pg_uri: str, tmp_path: Path
) -> None:
    """Given a schema at migration 1 (text bodies) holding an encrypted thread suspended for
    approval, its sealed values base64 in the text, as the release before wrote it
    When the backend opens it (upgrading it to the latest migration) and the thread is approved
    Then the old rows read as they did, the new rows are packed, and the thread verifies."""
    kek = LocalKeyFile(tmp_path / "kek")
    with fresh_schema_uri() as source:
        writer = postgres_backend(source, kek=kek)
        email_graph.with_backend(writer).invoke({"user_prompt": PROMPT}, thread_id="tx")
        writer.close()
        with psycopg.connect(source) as conn:
            steps = conn.execute("SELECT thread_id, step, body FROM checkpoints").fetchall()
            heads = conn.execute("SELECT * FROM threads").fetchall()
            records = conn.execute("SELECT thread_id, key, version, body FROM records").fetchall()
            payloads = conn.execute("SELECT * FROM payloads").fetchall()
    with psycopg.connect(pg_uri) as conn:  # the schema as the release before left it
        conn.execute(_VERSIONS)
        conn.execute(MIGRATIONS[0].sql.encode())
        conn.execute("INSERT INTO durable_graph_schema (version, name) VALUES (1, 'initial')")
        text_steps = [(t, s, unpack(b)) for t, s, b in steps]
        assert all('"~' in body for _, _, body in text_steps), "base64 boxes in the text"
        conn.cursor().executemany("INSERT INTO checkpoints VALUES (%s, %s, %s)", text_steps)
        conn.cursor().executemany("INSERT INTO threads VALUES (%s, %s, %s, %s, %s)", heads)
        conn.cursor().executemany(
            "INSERT INTO records VALUES (%s, %s, %s, %s)",
            [(t, k, v, unpack(b)) for t, k, v, b in records],
        )
        conn.cursor().executemany("INSERT INTO payloads VALUES (%s, %s, %s, %s)", payloads)

    backend = postgres_backend(pg_uri, kek=kek)
    app = email_graph.with_backend(backend)
    assert app.get_state("tx").values["user_prompt"] == PROMPT
    assert verify_thread(backend, "tx").ok
    app.resume("tx", values={"approved": True}, as_node="human_review")

    assert app.get_state("tx").values["outcome"] == "sent"
    report = verify_thread(backend, "tx")
    assert report.ok and report.notes == [], report.reason
    backend.close()
    with psycopg.connect(pg_uri) as conn:
        found = conn.execute("SELECT max(version) FROM durable_graph_schema").fetchone()
        rows = conn.execute("SELECT step, body FROM checkpoints ORDER BY step").fetchall()
    assert found is not None and found[0] == LATEST
    old = {s for _, s, _ in text_steps}
    assert all(not bytes(b).startswith(MAGIC) for s, b in rows if s in old), "not rewritten"
    assert all(bytes(b).startswith(MAGIC) for s, b in rows if s not in old), "new rows packed"
