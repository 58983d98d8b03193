"""Erasure reaches the objects a node stored with `ctx.save`, on every backend: an erased value
that points to one (inline, or among many in a big value kept as a chunk) takes the object with
it, unless another thread's values still point to it (content-addressed: the same bytes saved
by two threads are one object); `verify` and a bundle exported afterwards still pass, name the
erased field and hold none of the bytes. With encryption on, the thread's own sealed objects go
too, whether fields are erased or the whole thread (key destruction).
"""

from __future__ import annotations

import base64
from typing import Any

from pydantic import BaseModel

from durable_graph import END, START, NodeContext, StateGraph
from durable_graph.backend import Backend
from durable_graph.bundle import build_bundle, verify_bundle
from durable_graph.checkpoint import Actor, PayloadRef
from durable_graph.clock import ManualClock
from durable_graph.erasure import erase
from durable_graph.errors import DataKeyUnavailable
from durable_graph.timetravel import fork
from durable_graph.verification import verify_thread
from tests.conformance.test_encryption import Encrypted
from tests.conformance.test_lost_appends import stored

ALICE = Actor(kind="cli", id="dpo@example.com")
SCAN = "passport scan of Jane Roe, no. C01X00T47"
SHARED = "the bank's public fee schedule"


class Dossier(BaseModel):
    person: str = ""
    scan: dict[str, Any] = {}  # a ref, inline in the change
    # Many refs: a value big enough to be a chunk. Few enough that the erasure record naming
    # them stays under 4 KB: moto's KMS signs a longer record's digest (`MessageType=DIGEST`)
    # as if it were the message, which real KMS does not.
    pages: list[dict[str, Any]] = []
    common: dict[str, Any] = {}  # bytes every thread saves: one shared object


def file(state: Dossier, ctx: NodeContext) -> dict[str, Any]:
    scan = ctx.save(f"{SCAN} for {state.person}".encode(), "text/plain")
    pages = [
        {"n": n, "ref": ctx.save(f"page {n} of {state.person}".encode()).model_dump(mode="json"),
         "note": "x" * 300}
        for n in range(30)
    ]  # fmt: skip
    common = ctx.save(SHARED.encode(), "text/plain")
    return {"scan": scan.model_dump(mode="json"), "pages": pages,
            "common": common.model_dump(mode="json")}  # fmt: skip


def _graph() -> Any:
    builder = StateGraph(Dossier)
    builder.add_node("file", file)
    builder.add_edge(START, "file")
    builder.add_edge("file", END)
    return builder.compile(name="tests.conformance.test_erasure_saved:graph")


graph = _graph()


def _holder() -> Any:
    """A graph that only keeps what its run is given."""
    builder = StateGraph(Dossier)
    builder.add_node("hold", lambda state: {})
    builder.add_edge(START, "hold")
    builder.add_edge("hold", END)
    return builder.compile(name="tests.conformance.test_erasure_saved:holder")


holder = _holder()


def refs(values: dict[str, Any]) -> list[PayloadRef]:
    found = [values["scan"], values["common"], *(page["ref"] for page in values["pages"])]
    return [PayloadRef.model_validate(ref) for ref in found]


def test_saved_objects_go_with_the_erased_fields_and_shared_ones_stay(
    backend: Backend, clock: ManualClock
) -> None:
    """Given two threads that saved a scan, 30 pages (a chunked value) and one object both
    saved (the same bytes)
    When the first thread's `scan`, `pages` and `common` are erased, then the second thread
    whole
    Then the first erasure deletes its scan and pages and keeps the shared object (the second
    thread points to it), names them in its record, and `verify` passes naming the fields; the
    second erasure deletes the shared object too; a bundle of the first holds none of the
    bytes."""
    app = graph.with_backend(backend, clock=clock)
    jane = app.invoke({"person": "Jane Roe"}, thread_id="jane")
    john = app.invoke({"person": "John Poe"}, thread_id="john")
    row = backend.checkpoints.inner.get_checkpoint("jane", 1)
    assert row is not None and row.changes["pages"].ref is not None, "pages are a chunk"
    mine, theirs = refs(jane), refs(john)
    common = mine[1]
    assert common.sha256 == theirs[1].sha256, "the same bytes: one object"
    assert all(stored(backend, ref) for ref in mine + theirs)

    record = erase(backend, "jane", fields=["scan", "pages", "common"], reason="GDPR #15",
                   actor=ALICE)  # fmt: skip

    assert record is not None
    own = [ref for ref in mine if ref.sha256 != common.sha256]
    assert not any(stored(backend, ref) for ref in own), "the scan and every page are gone"
    assert {ref.sha256 for ref in own} <= set(record.payloads)
    assert stored(backend, common) and common.sha256 not in record.payloads
    assert all(stored(backend, ref) for ref in theirs), "the other thread's objects stay"
    report = verify_thread(backend, "jane")
    assert report.ok, report.reason
    assert report.erased[1] == ["common", "pages", "scan"]
    bundle = build_bundle(backend, "jane")
    assert verify_bundle(bundle).ok
    blobs = b"".join(base64.b64decode(b) for b in bundle.payloads.values())
    text = bundle.model_dump_json()
    for secret in (SCAN, "page 7 of Jane Roe", SHARED):
        assert secret not in text and secret.encode() not in blobs

    assert erase(backend, "john", reason="GDPR #16", actor=ALICE) is not None
    assert not stored(backend, common), "no thread points to it any more"
    assert not any(stored(backend, ref) for ref in theirs)
    for thread in ("jane", "john"):
        report = verify_thread(backend, thread)
        assert report.ok, report.reason


def test_an_object_another_thread_keeps_in_a_chunk_stays(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a thread whose scan ref was handed to another thread, which keeps it among its own
    pages (a chunked value)
    When the first thread is erased whole
    Then the scan stays (the second thread's chunk points to it) and both verify."""
    app = graph.with_backend(backend, clock=clock)
    jane = app.invoke({"person": "Jane Roe"}, thread_id="jane")
    handed = [{"n": -1, "ref": jane["scan"], "note": "x" * 40}] + [
        {"n": n, "ref": jane["common"], "note": "y" * 300} for n in range(30)
    ]
    holder.with_backend(backend, clock=clock).invoke({"pages": handed}, thread_id="kept")
    row = backend.checkpoints.inner.get_checkpoint("kept", 0)
    assert row is not None and row.changes["pages"].ref is not None, "kept in a chunk"

    assert erase(backend, "jane", reason="GDPR #17", actor=ALICE) is not None

    scan = PayloadRef.model_validate(jane["scan"])
    assert stored(backend, scan)
    assert not stored(backend, PayloadRef.model_validate(jane["pages"][0]["ref"]))
    for thread in ("jane", "kept"):
        report = verify_thread(backend, thread)
        assert report.ok, report.reason


def test_sealed_saved_objects_go_with_the_fields_and_with_the_key(
    encrypted: Encrypted, clock: ManualClock
) -> None:
    """Given an encrypted store, where each thread's saved objects are sealed under its key
    When one thread's `scan` and `pages` are erased (a fork of it still holding the pages'
    refs), and another thread is erased whole
    Then the first thread's scan and pages stay until the fork's are erased too, then go (its
    other object stays), and every object of the second is deleted as its key is
    destroyed; all verify."""
    backend = encrypted.backend
    app = graph.with_backend(backend, clock=clock)
    jane = app.invoke({"person": "Jane Roe"}, thread_id="jane")
    john = app.invoke({"person": "John Poe"}, thread_id="john")
    mine, theirs = refs(jane), refs(john)

    fork(app, "jane", 1, "jane-fork")  # copies her state: her pages' refs, which it can open

    erase(backend, "jane", fields=["scan", "pages"], reason="GDPR #18", actor=ALICE)
    record = erase(backend, "john", reason="GDPR #19", actor=ALICE)

    assert all(stored(backend, ref) for ref in mine), "the fork points to the scan and pages"
    page = PayloadRef.model_validate(app.get_state("jane-fork").values["pages"][0]["ref"])
    assert backend.payloads.get(page) == b"page 0 of Jane Roe"
    erase(backend, "jane-fork", fields=["scan", "pages"], reason="GDPR #18", actor=ALICE)
    assert not stored(backend, mine[0]) and stored(backend, mine[1])
    assert not any(stored(backend, ref) for ref in mine[2:])
    assert record is not None and record.data_key
    assert not any(stored(backend, ref) for ref in theirs)
    assert {ref.sha256 for ref in theirs} <= set(record.payloads)
    try:
        backend.payloads.get(mine[1])
    except DataKeyUnavailable as exc:  # pragma: no cover - the assertion says why
        raise AssertionError("jane's key stays: only fields were erased") from exc
    for thread in ("jane", "john", "jane-fork"):
        report = verify_thread(backend, thread)
        assert report.ok, report.reason
