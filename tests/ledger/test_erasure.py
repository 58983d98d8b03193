"""Erasure on the embedded store, where the stored rows and files can be inspected: snapshots
(which copy values) go with the values, reads of the erased thread still fold correctly, and
what cannot be erased (format-1 records) or must not be (a running thread) is refused."""

from __future__ import annotations

import shutil
import sqlite3
import zlib
from pathlib import Path

import pytest

from durable_graph.backends.local import local_backend
from durable_graph.bundle import build_bundle, verify_bundle
from durable_graph.checkpoint import Actor
from durable_graph.clock import ManualClock
from durable_graph.erasure import erase
from durable_graph.erasure_record import ERASED, load_erasures
from durable_graph.errors import InvalidInput
from durable_graph.timetravel import fork
from durable_graph.verification import verify_thread
from tests.helpers import row_text
from tests.ledger import legacy_v1
from tests.ledger.graphs import fake_llm
from tests.ledger.graphs import graph as chat_graph
from tests.ledger.test_records import FIXTURE, chat_with_snapshots, snapshot_rows

DPO = Actor(kind="cli", id="dpo")


def _plain(data: bytes) -> bytes:
    """A payload's bytes, decompressed when it is a (zlib) snapshot segment or page."""
    try:
        return zlib.decompress(data)
    except zlib.error:
        return data


def test_erasing_a_thread_with_snapshots_deletes_them_and_reads_still_fold(
    tmp_path: Path,
) -> None:
    """Given a 150-turn chat whose store wrote state snapshots (copies of the values)
    When its messages are erased
    Then every snapshot file is gone, no row names one, a cold read returns a marker per
    erased append with the other fields intact, and the chain verifies."""
    home = tmp_path / "home"
    chat_with_snapshots(home, turns=150)
    snapshots = snapshot_rows(home)
    assert snapshots, "the chat is long enough to have snapshots"
    backend = local_backend(home, clock=ManualClock())

    record = erase(backend, "c", fields=["messages"], reason="GDPR #5", actor=DPO)

    assert record is not None
    payloads = home / "payloads"
    for _, sha in snapshots:
        assert not (payloads / "sha256" / sha[:2] / sha).exists()
        assert sha in record.payloads
    assert snapshot_rows(home) == []
    cold = local_backend(home).checkpoints.head_checkpoint("c")
    assert cold is not None and cold.values["turns"] == 150
    assert len(cold.values["messages"]) == 150
    assert all(ERASED in item for item in cold.values["messages"])
    assert verify_thread(backend, "c").ok
    text = b"".join(_plain(p.read_bytes()) for p in payloads.rglob("*") if p.is_file())
    with sqlite3.connect(home / "state.db") as conn:
        rows = "".join(row_text(r[0]) for r in conn.execute("SELECT body FROM checkpoints"))
    answer = fake_llm({"turn": 7})
    assert answer not in rows and answer.encode() not in text


def test_format_1_records_are_refused_and_their_forks_are_erasable(tmp_path: Path) -> None:
    """Given a store written by the previous release (format 1: values hashed in the clear)
    When its thread is erased, then it is refused naming format 1 and nothing is recorded
    When a format-2 fork of it is erased, then that works and both still verify."""
    home = tmp_path / "home"
    shutil.copytree(FIXTURE, home)
    backend = local_backend(home, clock=ManualClock())
    with pytest.raises(InvalidInput, match="format-1"):
        erase(backend, "chat-v1", reason="GDPR #6", actor=DPO)
    assert load_erasures(backend.checkpoints, "chat-v1") == []

    app = legacy_v1.chat.with_backend(backend, clock=ManualClock())
    fork(app, "chat-v1", 20, "chat-v2", {"limit": 30})
    app.run_until_settled("chat-v2")
    record = erase(backend, "chat-v2", fields=["messages"], reason="GDPR #6", actor=DPO)

    assert record is not None and "0" in record.steps
    assert verify_thread(backend, "chat-v2").ok and verify_thread(backend, "chat-v1").ok


def test_a_running_thread_is_not_erased(tmp_path: Path) -> None:
    """Given a thread whose step 0 is committed and whose first task has not run yet
    When it is erased, then it is refused naming the thread, and nothing is recorded."""
    backend = local_backend(tmp_path / "home", clock=ManualClock())
    app = chat_graph.with_backend(backend, clock=ManualClock())
    app.engine().start("r1", {"limit": 2}, actor=DPO)

    with pytest.raises(InvalidInput, match="running") as refused:
        erase(backend, "r1", reason="GDPR #7", actor=DPO)

    assert refused.value.field == "thread_id"
    assert load_erasures(backend.checkpoints, "r1") == []


def test_a_fork_still_verifies_after_its_origin_is_erased(tmp_path: Path) -> None:
    """Given a fork made from step 3 of a chat (its step 0 names that record's hash)
    When the origin thread is erased whole (step 3's recorded LLM answer included)
    Then the fork verifies, from the store and from its bundle: the origin record's hash is
    attested by the origin's signed erasure record."""
    backend = local_backend(tmp_path / "home", clock=ManualClock())
    app = chat_graph.with_backend(backend, clock=ManualClock())
    app.invoke({"limit": 4}, thread_id="o")
    fork(app, "o", 3, "f", {"limit": 5})
    app.run_until_settled("f")

    erase(backend, "o", reason="GDPR #9", actor=DPO)

    assert verify_thread(backend, "o").ok
    report = verify_thread(backend, "f")
    assert report.ok, report.reason
    assert verify_bundle(build_bundle(backend, "f")).ok
