"""`durable-graph erase` right after a thread ran, on every store: it returns at once and says
which shared objects it scheduled (stored moments ago: `pending_deletes.py`), `verify` notes
them, and `erase --wait` (SQLite, the one store waited on: 11 s of real time) deletes them
before returning.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from durable_graph.checkpoint import PayloadRef
from durable_graph.errors import PayloadCorrupted
from durable_graph.loader import load_graph
from durable_graph.pending_deletes import pending_deletes
from durable_graph.sealed_payloads import raw_payloads
from tests.audit.conftest import Store, opened
from tests.conformance.test_erasure import DOSSIER, EMAIL, io_payload

GRAPH = "tests.conformance.test_erasure:graph"  # records a knowledge page: a shared object


def ran(store: Store, thread_id: str) -> PayloadRef:
    app = load_graph(GRAPH).with_backend(store.backend)
    app.invoke({"email": EMAIL, "dossier": DOSSIER}, thread_id=thread_id)
    return io_payload(store.backend, thread_id)


def test_erase_returns_at_once_and_names_what_it_scheduled(store: Store) -> None:
    page = ran(store, "kb-1")

    done = store.run("erase", "kb-1", "--reason", "GDPR #10")

    assert done.code == 0, done.err
    assert "1 scheduled (stored less than 10 s ago" in done.out
    shown = store.run("verify", "kb-1")
    assert shown.code == 0 and "1 payload object(s) named by erasure 1 are scheduled" in shown.out
    assert raw_payloads(store.backend.payloads).get(page)  # still there, as verify says
    assert ran(store, "kb-2") == page, "the same page: one object"
    again = store.json("erase", "kb-2", "--reason", "GDPR #11")
    assert again["scheduled"] == [page.sha256] and page.sha256 in again["payloads"]


def test_erase_wait_deletes_before_returning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with opened("sqlite", tmp_path, monkeypatch) as store:
        page = ran(store, "kb-1")

        waited = store.json("erase", "kb-1", "--reason", "GDPR #12", "--wait")

        assert waited["scheduled"] == [] and page.sha256 in waited["payloads"]
        with pytest.raises(PayloadCorrupted):
            raw_payloads(store.backend.payloads).get(page)
        assert pending_deletes(store.backend.checkpoints) == []
        assert "scheduled" not in store.run("verify", "kb-1").out
