"""Encryption at rest with per-thread data keys, on every backend (memory, SQLite, DynamoDB + S3
on moto with a KMS key, PostgreSQL): the stored bytes hold none of the values, reads round-trip,
destroying the key (erasure of the whole thread) leaves values unreadable while `verify` passes
and names them, and altered ciphertext is detected.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from moto import mock_aws
from pydantic import BaseModel

from durable_graph import END, START, NodeContext, StateGraph
from durable_graph.backend import Backend
from durable_graph.backends.aws.factory import aws_backend
from durable_graph.backends.local import local_backend
from durable_graph.backends.local.outbox_mailer import OutboxMailer
from durable_graph.backends.local.row_bodies import decode_body
from durable_graph.backends.memory import memory_backend
from durable_graph.backends.postgres import postgres_backend
from durable_graph.bundle import build_bundle, verify_bundle
from durable_graph.checkpoint import Actor
from durable_graph.clock import ManualClock
from durable_graph.encryption import SEALED
from durable_graph.erasure import erase
from durable_graph.erasure_record import ERASED
from durable_graph.errors import CorruptRecord, DataKeyUnavailable
from durable_graph.keys import DATA_KEY, LocalKeyFile
from durable_graph.retention import run_retention
from durable_graph.retention_policy import Retention
from durable_graph.sealed_fields import SEALED_IN, is_sealed_part
from durable_graph.verification import verify_thread
from tests import graphs
from tests.aws.backend_factory import serialized, sqs_time_follows
from tests.aws.resources import clients, create_resources, stored_row
from tests.conformance.test_erasure import DOSSIER, EMAIL, KNOWLEDGE, graph, run_case
from tests.postgres.server import fresh_schema_uri

ALICE = Actor(kind="cli", id="dpo@example.com")
RECEIPT = "receipt 7731-PAYMENT-TO-JANE"


class Charge(BaseModel):
    amount: int = 0
    note: str = ""


def charge(state: Charge, ctx: NodeContext) -> dict[str, Any]:
    receipt = ctx.step("charge", lambda: {"receipt": RECEIPT, "amount": state.amount})
    return {"note": f"charged {receipt['amount']}"}


def _charge_graph() -> Any:
    builder = StateGraph(Charge)
    builder.add_node("charge", charge)
    builder.add_edge(START, "charge")
    builder.add_edge("charge", END)
    return builder.compile(name="tests.conformance.test_encryption:charge_graph")


charge_graph = _charge_graph()
SECRETS = (EMAIL, "reviewed jane", DOSSIER[:40], KNOWLEDGE[:40])


@dataclass
class Encrypted:
    """An encrypted backend and a way to read every byte its storage holds."""

    backend: Backend
    stored: Callable[[], bytes]


def _memory(tmp_path: Path, clock: ManualClock) -> AbstractContextManager[Encrypted]:
    @contextmanager
    def build() -> Iterator[Encrypted]:
        backend = memory_backend(clock, kek=LocalKeyFile(tmp_path / "kek"))
        inner: Any = backend.checkpoints.inner
        raw: Any = backend.checkpoints.payloads

        def stored() -> bytes:
            rows = [c.to_stored_json() for t in inner._checkpoints.values() for c in t.values()]
            records = [json.dumps(r.value) for r in inner._records.values()]
            return "\n".join(rows + records).encode() + b"".join(raw.raw._blobs.values())

        yield Encrypted(backend, stored)

    return build()


def _local(tmp_path: Path, clock: ManualClock) -> AbstractContextManager[Encrypted]:
    @contextmanager
    def build() -> Iterator[Encrypted]:
        home = tmp_path / "home"
        backend = local_backend(home, clock=clock, encrypt=True)

        def stored() -> bytes:  # every file of the store (state.db, its WAL, payloads), and
            # the checkpoint rows decompressed (big rows are kept zstd-compressed: row_bodies.py)
            skip = home / "keys"
            files = [p for p in home.rglob("*") if p.is_file() and skip not in p.parents]
            with closing(sqlite3.connect(home / "state.db")) as db:
                rows = [decode_body(b) for (b,) in db.execute("SELECT body FROM checkpoints")]
            bodies = [r if isinstance(r, bytes) else r.encode() for r in rows]
            return b"".join([*(p.read_bytes() for p in sorted(files)), *bodies])

        try:
            yield Encrypted(backend, stored)
        finally:
            backend.close()

    return build()


def _postgres(tmp_path: Path, clock: ManualClock) -> AbstractContextManager[Encrypted]:
    @contextmanager
    def build() -> Iterator[Encrypted]:
        with fresh_schema_uri() as uri:
            backend = postgres_backend(
                uri,
                clock=clock,
                mailer=OutboxMailer(tmp_path / "sent"),
                kek=LocalKeyFile(tmp_path / "kek"),
            )

            def stored() -> bytes:  # every row of every table of the store's schema, and
                # every file of its mail folder
                out = [p.read_bytes() for p in sorted((tmp_path / "sent").rglob("*.json"))]
                with psycopg.connect(uri) as conn:
                    tables = conn.execute(
                        "SELECT table_name FROM information_schema.tables "
                        "WHERE table_schema = current_schema()"
                    ).fetchall()
                    for (table,) in tables:
                        rows = conn.execute(f'SELECT t::text FROM "{table}" t').fetchall()
                        out.extend(str(r[0]).encode() for r in rows)
                return b"\n".join(out)

            try:
                yield Encrypted(backend, stored)
            finally:
                backend.close()

    return build()


def _moto(_: Path, clock: ManualClock) -> AbstractContextManager[Encrypted]:
    @contextmanager
    def build() -> Iterator[Encrypted]:
        with mock_aws(), sqs_time_follows(clock):
            aws = serialized(clients())
            data_key = aws.kms.create_key(Description="durable-graph data keys")["KeyMetadata"]
            resources = create_resources(aws, data_key_id=data_key["KeyId"])
            backend = aws_backend(resources.settings, aws, clock=clock)  # KMS envelope encryption
            assert backend.checkpoints.keys is not None
            table, bucket = resources.settings.table_name, resources.settings.bucket

            def stored() -> bytes:  # every item of the table, every object of the bucket,
                # and the checkpoint rows decompressed (item_bodies.py compresses big ones)
                items = aws.dynamodb.scan(TableName=table)["Items"]
                out = [json.dumps(items, default=str).encode()]
                out += [stored_row(i).encode() for i in items if "B" in i.get("body", {})]
                listed = aws.s3.list_objects_v2(Bucket=bucket).get("Contents", [])
                for obj in listed:
                    out.append(aws.s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
                return b"\n".join(out)

            yield Encrypted(backend, stored)

    return build()


FACTORIES = {"memory": _memory, "local": _local, "aws-moto": _moto, "postgres": _postgres}


def holds(data: bytes, secret: str) -> bool:
    """Whether `data` holds `secret` as text, hex (a bytea column) or escaped JSON."""
    raw = secret.encode()
    return raw in data or raw.hex().encode() in data or json.dumps(secret)[1:-1].encode() in data


def test_stored_bytes_hold_no_value_and_reads_round_trip(
    encrypted: Encrypted, clock: ManualClock
) -> None:
    """Given a store with encryption on
    When a thread runs that holds an email inline, a dossier over 8 KB (an offloaded chunk),
    a recorded LLM answer naming the email and a recorded 12 KB page (an io `$payload`)
    Then no byte the store holds contains any of them (rows, records, payload objects), while
    reads give every value back and `verify` (which has the key) checks every one."""
    backend = encrypted.backend
    app = run_case(backend, clock, "t1")

    values = app.get_state("t1").values
    assert values["email"] == EMAIL and values["dossier"] == DOSSIER
    assert values["notes"] == [f"contacted {EMAIL}", f"reviewed {EMAIL}"]
    stored = encrypted.stored()
    assert holds(stored, "tests.conformance.test_erasure:graph"), "rows are read in full"
    assert holds(stored, "dgx2"), "payload objects are read in full (sealed ones)"
    for secret in SECRETS:
        assert not holds(stored, secret), secret
    row = backend.checkpoints.inner.get_checkpoint("t1", 0)
    assert row is not None and row.changes["email"].e and row.changes["email"].v is None
    report = verify_thread(backend, "t1")
    assert report.ok, report.reason
    assert report.notes == [], "with the key every sealed value is checked"


def test_key_destruction_leaves_values_unreadable_and_the_proof_intact(
    encrypted: Encrypted, clock: ManualClock
) -> None:
    """Given an encrypted, completed thread
    When the whole thread is erased
    Then its data key is destroyed (the sealed rows stay as they were), reads show every value
    as erased, `verify` and an exported bundle pass and name every erased field, and the
    erasure record names the destroyed key."""
    backend = encrypted.backend
    app = run_case(backend, clock, "t1")
    store = backend.checkpoints
    before = [r.to_stored_json() for r in store.inner.list_checkpoints("t1", newest_first=False)]

    record = erase(backend, "t1", reason="GDPR Art. 17 #7", actor=ALICE)

    assert record is not None and record.data_key
    assert record.steps["0"] == ["dossier", "email", "notes", "summary"]
    after = [r.to_stored_json() for r in store.inner.list_checkpoints("t1", newest_first=False)]
    assert after == before, "key destruction rewrites no row"
    key = store.get_record("t1", DATA_KEY)
    assert key is not None and "wrapped" not in key.value and key.value["erasure"] == 1
    assert store.keys is not None
    with pytest.raises(DataKeyUnavailable, match="destroyed"):
        store.keys.cipher("t1")
    values = app.get_state("t1").values
    assert values["email"][ERASED]["erasure"] == 1 and values["dossier"][ERASED]["step"] == 0
    report = verify_thread(backend, "t1")
    assert report.ok, report.reason
    assert report.erased[0] == ["dossier", "email", "notes", "summary"]
    assert report.erasures[0]["data_key_destroyed"] == record.data_key
    bundle_report = verify_bundle(build_bundle(backend, "t1"))
    assert bundle_report.ok, bundle_report.reason
    assert bundle_report.erased == report.erased
    assert erase(backend, "t1", reason="again", actor=ALICE) is None, "nothing left to erase"


def test_altered_ciphertext_is_detected(encrypted: Encrypted, clock: ManualClock) -> None:
    """Given an encrypted thread
    When one byte of a sealed value is changed in its row, or a sealed io response is
    replaced by another one sealed with the same key
    Then reading that value fails, and `verify` names the step (`state`, `hash`); an io
    response kept as a pointer into its step's sealed change reads back as the answer."""
    backend = encrypted.backend
    run_case(backend, clock, "t1")
    store = backend.checkpoints.inner
    row = store.get_checkpoint("t1", 0)
    assert row is not None
    text = str(row.changes["email"].e)
    assert text.startswith("~"), "envelope 2"
    sealed = base64.b64decode(text[1:])
    flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])
    altered = "~" + base64.b64encode(flipped).decode()
    email = row.changes["email"].model_copy(update={"e": altered})
    store.rewrite_checkpoint(row.model_copy(update={"changes": {**row.changes, "email": email}}))
    backend.checkpoints.forget_thread("t1")

    report = verify_thread(backend, "t1")
    assert (report.ok, report.first_bad_step, report.check) == (False, 0, "state")
    with pytest.raises(CorruptRecord, match="does not open"):
        backend.checkpoints.get_checkpoint("t1", 0)
    store.rewrite_checkpoint(row)
    assert verify_thread(backend, "t1").ok

    step2 = store.get_checkpoint("t1", 2)
    step1 = store.get_checkpoint("t1", 1)
    # Step 1's answer (a long page) is one sealed chunk, named in the clear.
    assert step1 is not None and step2 is not None and is_sealed_part(step1.io[0].response)
    assert SEALED not in step1.io[0].response
    # Step 2's answer is also its appended note: stored once, its io response a pointer.
    assert step2.io[0].response == {SEALED_IN: ["notes", 0]}
    read = backend.checkpoints.get_checkpoint("t1", 2)
    assert read is not None and read.io[0].response == f"reviewed {EMAIL}"
    moved = step2.io[0].model_copy(update={"response": step1.io[0].response})
    store.rewrite_checkpoint(step2.model_copy(update={"io": [moved]}))
    report = verify_thread(backend, "t1")
    assert (report.ok, report.first_bad_step, report.check) == (False, 2, "hash")


def test_erasing_some_fields_of_an_encrypted_thread_keeps_its_key(
    encrypted: Encrypted, clock: ManualClock
) -> None:
    """Given an encrypted thread
    When only its email and dossier are erased
    Then the key stays (other fields still read), the dossier's sealed chunk is deleted, and
    `verify` passes naming the two fields; a bundle verifies without the key, saying how many
    sealed values it could not compare with their digests."""
    backend = encrypted.backend
    app = run_case(backend, clock, "t1")
    row = backend.checkpoints.inner.get_checkpoint("t1", 0)
    assert row is not None and row.changes["dossier"].ref is not None
    chunk = row.changes["dossier"].ref

    record = erase(backend, "t1", fields=["email", "dossier"], reason="GDPR #8", actor=ALICE)

    assert record is not None and not record.data_key and chunk.sha256 in record.payloads
    values = app.get_state("t1").values
    assert ERASED in values["email"] and values["notes"][0] == f"contacted {EMAIL}"
    report = verify_thread(backend, "t1")
    assert report.ok and report.erased == {0: ["dossier", "email"]}, report.reason
    bundle = verify_bundle(build_bundle(backend, "t1"))
    assert bundle.ok, bundle.reason
    assert any("not checked" in note for note in bundle.notes), bundle.notes


def test_retention_of_a_whole_thread_destroys_its_key(
    encrypted: Encrypted, clock: ManualClock
) -> None:
    """Given a graph that keeps values 30 days, an encrypted thread run on day 0 and another on
    day 31
    When retention runs on day 31
    Then the old thread's key is destroyed under the retention tombstone (its rows untouched),
    the new one still reads, and both verify."""
    backend = encrypted.backend
    run_case(backend, clock, "old")
    clock.advance(31 * 86_400)
    run_case(backend, clock, "new")

    done = run_retention(backend, policies={graph.name: Retention(days=30)}, clock=clock).erased

    assert [(r.thread_id, bool(r.data_key)) for r in done] == [("old", True)]
    key = backend.checkpoints.get_record("old", DATA_KEY)
    assert key is not None and "wrapped" not in key.value
    app = graph.with_backend(backend)
    assert app.get_state("new").values["email"] == EMAIL
    assert ERASED in app.get_state("old").values["email"]
    assert verify_thread(backend, "old").ok and verify_thread(backend, "new").ok


def test_fan_out_rows_and_side_effect_results_are_sealed(
    encrypted: Encrypted, clock: ManualClock
) -> None:
    """Given an encrypted store
    When a fan-out runs (each task's writes kept in a `done#` row until the last one merges)
    and a node runs a side effect with `ctx.step` (its result kept in an effect record)
    Then neither the merged summaries nor the effect's receipt is stored in the clear, and
    both threads read back and verify."""
    backend = encrypted.backend
    docs = graphs.docs_graph.with_backend(backend, clock=clock)
    out = docs.invoke({"documents": ["a", "b", "c"]}, thread_id="fan")
    assert sorted(out["summaries"]) == ["summary of a", "summary of b", "summary of c"]
    paid = charge_graph.with_backend(backend, clock=clock).invoke({"amount": 42}, thread_id="pay")
    assert paid["note"] == "charged 42"

    stored = encrypted.stored()
    for secret in ("summary of", RECEIPT):
        assert not holds(stored, secret), secret
    assert verify_thread(backend, "fan").ok and verify_thread(backend, "pay").ok
