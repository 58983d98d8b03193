"""Parts of an encrypted thread kept whole in chunks (a big io response, interrupt payload or
resume value), on every backend: their refs are in the clear beside the sealed values
(`sealed_fields.is_sealed_part`), so the reference index, `verify`'s payload check and bundle
export see them, and an erasure deletes exactly the chunks nothing refers to any more.
"""

from __future__ import annotations

import base64
from typing import Any

from pydantic import BaseModel

from durable_graph import END, START, NodeContext, StateGraph
from durable_graph.backend import Backend
from durable_graph.bundle import build_bundle, verify_bundle
from durable_graph.checkpoint import PayloadRef
from durable_graph.clock import ManualClock
from durable_graph.encryption import is_sealed
from durable_graph.erasure import erase
from durable_graph.errors import PayloadCorrupted
from durable_graph.ledger_refs import record_refs
from durable_graph.references import references
from durable_graph.sealed_fields import sealed_ref
from durable_graph.sealed_payloads import raw_payloads
from durable_graph.verification import verify_thread
from tests.conformance.test_encryption import ALICE, Encrypted, holds

MARK = "JOHN-DOE-5512"
DOC = f"{MARK} " + "d" * 20_000  # an io response over the offload threshold: one sealed chunk
BIG = f"{MARK} " + "y" * 70_000  # an interrupt payload over 64 KiB: one sealed chunk


class Big(BaseModel):
    answer: str = ""


def ask(state: Big, ctx: NodeContext) -> dict[str, Any]:
    page = ctx.record("fetch", lambda r: DOC, {"doc": 1})
    answer = ctx.interrupt({"document": BIG, "pages": len(page)})
    return {"answer": "seen" if answer else ""}


def _graph() -> Any:
    builder = StateGraph(Big)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    return builder.compile(name="tests.conformance.test_encrypted_part_refs:graph")


graph = _graph()


def chunk_refs_of(backend: Backend, thread_id: str) -> dict[str, list[PayloadRef]]:
    """The sealed chunks the thread's parts name, by part: `io` (the node records its page
    once before it suspends and again when it runs on), `interrupt`, `resume`."""
    found: dict[str, list[PayloadRef]] = {"io": [], "interrupt": [], "resume": []}
    for row in backend.checkpoints.ledger(thread_id):
        values: list[tuple[str, Any]] = [("io", io.response) for io in row.io]
        if row.interrupt is not None:
            values.append(("interrupt", row.interrupt.payload))
        values += [("resume", v) for vs in row.resume.values() for v in vs]
        for part, value in values:
            ref = sealed_ref(value)
            if ref is not None:
                found[part].append(ref)
    return found


def gone(backend: Backend, ref: PayloadRef) -> bool:
    try:
        raw_payloads(backend.payloads).get(ref)
    except PayloadCorrupted:
        return True
    return False


def bundle_ok(backend: Backend, thread_id: str, refs: list[PayloadRef]) -> None:
    """A bundle verifies offline, carries `refs`' bytes and no plaintext of the person."""
    bundle = build_bundle(backend, thread_id)
    report = verify_bundle(bundle, trusted=bundle.public_keys)
    assert report.ok, report.reason
    assert {ref.sha256 for ref in refs} <= set(bundle.payloads)
    blobs = b"".join(base64.b64decode(b) for b in bundle.payloads.values())
    assert not holds(bundle.model_dump_json().encode() + blobs, MARK)


def test_chunked_parts_of_an_encrypted_thread_are_seen_and_erased_exactly(
    encrypted: Encrypted, clock: ManualClock
) -> None:
    """Given an encrypted thread with a big io response, interrupt payload and resume value,
    each kept whole in a sealed chunk
    Then each ref is in the clear in the ledger (a sealed chunk: no plaintext, no digest of
    it), the reference index and a bundle see all three, and the bundle verifies offline
    When the interrupt payloads are erased, then the io responses
    Then each erasure deletes exactly its chunk, the others stay readable, and the thread and
    a bundle made after each erasure verify."""
    backend = encrypted.backend
    app = graph.with_backend(backend, clock=clock)
    app.invoke({}, thread_id="enc")
    app.resume("enc", resume_value={"copy": BIG})
    chunks = chunk_refs_of(backend, "enc")
    assert [len(chunks[part]) for part in ("io", "interrupt", "resume")] == [2, 1, 1]
    every = [ref for refs in chunks.values() for ref in refs]
    assert all(is_sealed(ref) for ref in every)
    assert not holds(encrypted.stored(), MARK)
    ledger = backend.checkpoints.ledger("enc")
    named = {sha for row in ledger for sha in record_refs(row)}
    assert {ref.sha256 for ref in every} <= named
    assert {ref.sha256 for ref in every} <= references(backend, ledger)
    assert app.get_state("enc").values["answer"] == "seen"
    bundle_ok(backend, "enc", every)

    first = erase(backend, "enc", parts=["interrupts"], reason="GDPR #31", actor=ALICE)

    assert first is not None and first.payloads == [chunks["interrupt"][0].sha256]
    assert [gone(backend, ref) for ref in every] == [False, False, True, False]
    assert verify_thread(backend, "enc").ok
    bundle_ok(backend, "enc", [*chunks["io"], *chunks["resume"]])

    second = erase(backend, "enc", parts=["io"], reason="GDPR #32", actor=ALICE)

    assert second is not None
    assert sorted(second.payloads) == sorted(ref.sha256 for ref in chunks["io"])
    assert [gone(backend, ref) for ref in every] == [True, True, True, False]
    report = verify_thread(backend, "enc")
    assert report.ok, report.reason
    bundle_ok(backend, "enc", chunks["resume"])
