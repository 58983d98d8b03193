"""Interrupt payloads, resume values and io responses made of many small values, on every
backend (`docs/record-format.md` §6, §12): each 2 MB part goes to the payload store as one
salted chunk, the record keeps and hashes its ref, every row stays under the store's item
limit, the parts read back whole, the thread verifies (in the store and as a bundle), and a
chunk deleted or a ref altered is named at its step; with encryption on, no stored byte holds
them."""

from __future__ import annotations

from typing import Any

from durable_graph.backend import Backend
from durable_graph.bundle import build_bundle, verify_bundle
from durable_graph.checkpoint import PayloadRef
from durable_graph.clock import ManualClock
from durable_graph.ledger import verify_chain
from durable_graph.payloads import MARKER, is_ref, loaded
from durable_graph.runtime import CompiledGraph
from durable_graph.sealed_payloads import raw_payloads
from durable_graph.verification import verify_thread
from tests.big_state_graphs import many_small, parts_graph
from tests.conformance.test_encryption import Encrypted, holds

COUNT, WIDTH = 10_000, 200  # 10,000 strings of 200 characters: about 2 MB of JSON per part


def suspend_and_resume(app: CompiledGraph, thread_id: str) -> dict[str, Any]:
    """The thread asks with a 2 MB payload after a 2 MB io response, and is resumed with a
    2 MB value; what the node saw, and the payload as a reader got it while it waited."""
    app.invoke({"count": COUNT, "width": WIDTH}, thread_id=thread_id)
    (pending,) = app.get_state(thread_id).interrupts
    app.resume(thread_id, resume_value={"rows": many_small(COUNT, WIDTH, "resume")})
    return {"values": app.get_state(thread_id).values, "asked": pending.value}


def test_big_parts_are_chunked_and_round_trip(backend: Backend, clock: ManualClock) -> None:
    """Given a 2 MB io response, a 2 MB interrupt payload and a 2 MB resume value, each of
    10,000 small strings, then the thread completes with every part read back whole, every
    stored row is under `max_record_bytes`, each part is a `$payload` ref to a chunk, and the
    thread verifies, in the store and as an exported bundle."""
    app = parts_graph.with_backend(backend, clock=clock)
    seen = suspend_and_resume(app, "parts")
    assert seen["asked"]["rows"] == many_small(COUNT, WIDTH, "ask")
    assert seen["values"]["looked_up"] == COUNT and seen["values"]["answer_items"] == COUNT
    rows = backend.checkpoints.inner.list_checkpoints("parts", newest_first=False)
    assert all(len(r.to_stored_json()) <= backend.max_record_bytes for r in rows)
    assert max(len(r.to_stored_json()) for r in rows) < 8_000
    asked = next(r for r in rows if r.status == "suspended")
    assert asked.interrupt is not None and is_ref(asked.interrupt.payload)
    (io,) = asked.io
    assert is_ref(io.response)
    assert loaded(io.response, backend.payloads) == many_small(COUNT, WIDTH, "io")
    resumed = next(r for r in rows if r.resume)
    (values,) = resumed.resume.values()
    assert is_ref(values[0])
    assert loaded(values[0], backend.payloads) == {"rows": many_small(COUNT, WIDTH, "resume")}
    assert verify_thread(backend, "parts").ok
    assert verify_bundle(build_bundle(backend, "parts")).ok


def test_a_lost_or_swapped_part_is_named_at_its_step(backend: Backend, clock: ManualClock) -> None:
    """Given the thread, then an interrupt payload's ref altered in its record fails `hash` at
    that step, and its chunk deleted from the payload store fails `payload` there."""
    app = parts_graph.with_backend(backend, clock=clock)
    app.invoke({"count": COUNT, "width": WIDTH}, thread_id="parts")
    records = backend.checkpoints.ledger("parts")
    step = next(r.step for r in records if r.status == "suspended")
    record = records[step]
    assert record.interrupt is not None
    ref = PayloadRef.model_validate(record.interrupt.payload[MARKER])
    swapped = {MARKER: {**ref.model_dump(mode="json"), "sha256": "0" * 64}}
    edited = list(records)
    edited[step] = record.model_copy(
        update={"interrupt": record.interrupt.model_copy(update={"payload": swapped})}
    )
    report = verify_chain("parts", edited, backend.payloads)
    assert (report.first_bad_step, report.check) == (step, "hash")
    assert raw_payloads(backend.payloads).delete(ref)
    report = verify_thread(backend, "parts")
    assert (report.first_bad_step, report.check) == (step, "payload")


def test_big_parts_are_sealed_at_rest(encrypted: Encrypted, clock: ManualClock) -> None:
    """Given encryption at rest, then the three 2 MB parts read back whole and no stored byte
    holds any of their strings, and the thread verifies."""
    app = parts_graph.with_backend(encrypted.backend, clock=clock)
    seen = suspend_and_resume(app, "sealed")
    assert seen["asked"]["rows"] == many_small(COUNT, WIDTH, "ask")
    assert seen["values"]["looked_up"] == COUNT and seen["values"]["answer_items"] == COUNT
    stored = encrypted.stored()
    for tag in ("io", "ask", "resume"):
        assert not holds(stored, many_small(COUNT, WIDTH, tag)[4711])
    assert verify_thread(encrypted.backend, "sealed").ok
