"""Erasure and retention, on every backend: values and their salts go, digests stay, the chain
still verifies and names what was erased; payloads no live thread needs are deleted while
shared ones stay; tampering after erasure is still caught; retention runs on a skipping clock.
"""

from __future__ import annotations

import base64
import json
import operator
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

from durable_graph import END, START, NodeContext, StateGraph
from durable_graph.backend import Backend
from durable_graph.bundle import build_bundle, verify_bundle
from durable_graph.checkpoint import Actor, Change, PayloadRef
from durable_graph.clock import ManualClock
from durable_graph.erasure import erase
from durable_graph.erasure_record import ERASED, load_erasures
from durable_graph.errors import InvalidInput, PayloadCorrupted
from durable_graph.retention import RETENTION_ACTOR, run_retention
from durable_graph.retention_policy import Retention
from durable_graph.runtime import CompiledGraph
from durable_graph.verification import verify_thread

EMAIL = "jane.doe.4711@example.org"
DOSSIER = "medical history of Jane: " + "confidential " * 900  # over 8 KB: an offloaded chunk
KNOWLEDGE = "shared knowledge base page " * 500  # the same recorded io response in every thread
ALICE = Actor(kind="cli", id="alice@example.com")


class Case(BaseModel):
    email: str = ""
    dossier: str = ""
    notes: Annotated[list[str], operator.add] = Field(default_factory=list)
    summary: str = ""


def kb(request: dict[str, str]) -> str:
    del request
    return KNOWLEDGE


def intake(state: Case, ctx: NodeContext) -> dict[str, Any]:
    page = ctx.record("kb", kb, {"topic": "intake"})
    return {"notes": [f"contacted {state.email}"], "summary": page[:12]}


def review(state: Case, ctx: NodeContext) -> dict[str, Any]:
    answer = ctx.record("llm", lambda r: f"reviewed {r['who']}", {"who": state.email})
    return {"notes": [answer]}


def build(retention: Retention | None = None) -> CompiledGraph:
    builder = StateGraph(Case)
    builder.add_node("intake", intake)
    builder.add_node("review", review)
    builder.add_edge(START, "intake")
    builder.add_edge("intake", "review")
    builder.add_edge("review", END)
    return builder.compile(name="tests.conformance.test_erasure:graph", retention=retention)


graph = build()


def run_case(backend: Backend, clock: ManualClock, thread_id: str) -> CompiledGraph:
    app = graph.with_backend(backend, clock=clock)
    app.invoke({"email": EMAIL, "dossier": DOSSIER}, thread_id=thread_id)
    return app


def chunk_ref(backend: Backend, thread_id: str, field: str) -> PayloadRef:
    row = backend.checkpoints.inner.get_checkpoint(thread_id, 0)
    assert row is not None
    ref = row.changes[field].ref
    assert ref is not None, "the dossier is big enough to be offloaded"
    return ref


def io_payload(backend: Backend, thread_id: str) -> PayloadRef:
    for record in backend.checkpoints.ledger(thread_id):
        for io in record.io:
            if isinstance(io.response, dict) and "$payload" in io.response:
                return PayloadRef.model_validate(io.response["$payload"])
    raise AssertionError("the knowledge page is recorded as a $payload")


def gone(backend: Backend, ref: PayloadRef) -> bool:
    try:
        backend.payloads.get(ref)
    except PayloadCorrupted:
        return True
    return False


def test_erasing_fields_keeps_the_proof_and_names_them(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a completed thread holding an email (inline) and a dossier (an offloaded chunk)
    When alice erases those two fields
    Then verify passes and lists them per step, reads mark them "$erased" with who and where,
    the other fields are intact, and the dossier's chunk is gone from the store."""
    app = run_case(backend, clock, "t1")
    dossier = chunk_ref(backend, "t1", "dossier")

    record = erase(backend, "t1", fields=["email", "dossier"], reason="GDPR #88", actor=ALICE)

    assert record is not None and record.steps == {"0": ["dossier", "email"]}
    report = verify_thread(backend, "t1")
    assert report.ok, report.reason
    assert report.erased == {0: ["dossier", "email"]}
    assert report.erasures[0]["by"] == "cli:alice@example.com"
    values = app.get_state("t1").values
    assert values["email"] == {ERASED: {"step": 0, "by": "cli:alice@example.com",
                                        "at": record.erased_at, "erasure": 1}}  # fmt: skip
    assert values["summary"] == KNOWLEDGE[:12] and len(values["notes"]) == 2
    assert gone(backend, dossier)
    assert record.signature, "signed with the ledger key"


def test_an_exported_bundle_verifies_and_holds_none_of_the_erased_bytes(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a thread erased whole (every field, and its recorded io)
    When it is exported
    Then the bundle verifies offline, lists the erased fields, and neither its JSON nor any
    payload it carries contains the email, the dossier or the recorded answer."""
    run_case(backend, clock, "t1")
    erase(backend, "t1", reason="GDPR #89: erase everything", actor=ALICE)

    bundle = build_bundle(backend, "t1")
    report = verify_bundle(bundle)
    assert report.ok, report.reason
    assert set(report.erased[0]) == {"dossier", "email", "notes", "summary"}
    text = bundle.model_dump_json()
    blobs = b"".join(base64.b64decode(b) for b in bundle.payloads.values())
    for secret in (EMAIL, DOSSIER[:40], "reviewed jane", KNOWLEDGE[:40]):
        assert secret not in text and secret.encode() not in blobs


def test_shared_payloads_stay_until_no_live_thread_needs_them(
    backend: Backend, clock: ManualClock
) -> None:
    """Given two threads that recorded the same large io response (one payload object)
    When the first is erased whole, then the second
    Then the shared object survives the first erasure and is deleted by the second."""
    run_case(backend, clock, "t1")
    run_case(backend, clock, "t2")
    shared = io_payload(backend, "t1")
    assert shared.sha256 == io_payload(backend, "t2").sha256

    first = erase(backend, "t1", reason="GDPR #90", actor=ALICE)
    assert first is not None and shared.sha256 not in first.payloads
    assert not gone(backend, shared)
    assert verify_thread(backend, "t2").ok

    second = erase(backend, "t2", reason="GDPR #91", actor=ALICE)
    assert second is not None and shared.sha256 in second.payloads
    assert gone(backend, shared)
    assert verify_thread(backend, "t1").ok and verify_thread(backend, "t2").ok


def test_tampering_after_erasure_is_detected(backend: Backend, clock: ManualClock) -> None:
    """Given an erased thread
    When a hashed field of an erased record is edited, a value is dropped that no erasure
    record names, or the erasure record itself is rewritten
    Then verify fails, naming `hash`, `erasure` and `erasure` respectively."""
    run_case(backend, clock, "t1")
    erase(backend, "t1", fields=["notes"], reason="GDPR #92", actor=ALICE)
    store = backend.checkpoints.inner
    row = store.get_checkpoint("t1", 1)
    assert row is not None

    store.rewrite_checkpoint(row.model_copy(update={"duration_ms": row.duration_ms + 1}))
    report = verify_thread(backend, "t1")
    assert (report.ok, report.first_bad_step, report.check) == (False, 1, "hash")
    store.rewrite_checkpoint(row)
    assert verify_thread(backend, "t1").ok

    step1 = store.get_checkpoint("t1", 1)
    assert step1 is not None
    summary = step1.changes["summary"]
    store.rewrite_checkpoint(
        step1.model_copy(
            update={"changes": {**step1.changes, "summary": Change(op=summary.op, d=summary.d)}}
        )
    )
    report = verify_thread(backend, "t1")
    assert (report.ok, report.check) == (False, "erasure")
    store.rewrite_checkpoint(step1)

    found = store.get_record("t1", "erasure#1")
    assert found is not None
    forged = {**found.value, "steps": {**found.value["steps"], "1": ["notes", "summary"]}}
    store.put_record("t1", "erasure#1", forged, expected_version=found.version)
    report = verify_thread(backend, "t1")
    if backend.signer is not None:
        assert (report.ok, report.check) == (False, "erasure")


def test_bad_erasure_requests_change_nothing(backend: Backend, clock: ManualClock) -> None:
    """Given a thread
    When the erasure names an unknown field, or gives no reason
    Then it is refused with the field named, and nothing stored changed."""
    run_case(backend, clock, "t1")
    before = [r.to_stored_json() for r in backend.checkpoints.inner.list_checkpoints("t1")]

    with pytest.raises(InvalidInput, match="no field 'mail'") as unknown:
        erase(backend, "t1", fields=["mail"], reason="GDPR", actor=ALICE)
    assert unknown.value.field == "fields"
    with pytest.raises(InvalidInput) as no_reason:
        erase(backend, "t1", fields=["email"], reason="  ", actor=ALICE)
    assert no_reason.value.field == "reason"

    after = [r.to_stored_json() for r in backend.checkpoints.inner.list_checkpoints("t1")]
    assert after == before and load_erasures(backend.checkpoints, "t1") == []


def test_retention_erases_what_is_older_than_the_policy(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a graph that keeps values 30 days, one thread run on day 0 and one on day 31
    When retention runs on day 31 (the clock skips ahead), and again
    Then the old thread's values are erased under a signed tombstone by system:retention, the
    recent one is untouched, both verify, and the second run writes nothing."""
    policy = Retention(days=30)
    run_case(backend, clock, "old")
    clock.advance(31 * 86_400)
    run_case(backend, clock, "new")

    done = run_retention(backend, policies={graph.name: policy}, clock=clock).erased

    assert [r.thread_id for r in done] == ["old"]
    tombstone = done[0]
    assert tombstone.actor == RETENTION_ACTOR and tombstone.reason.startswith("retention:")
    assert sorted(tombstone.steps) == ["0", "1", "2"]
    assert verify_thread(backend, "old").ok and verify_thread(backend, "new").ok
    assert load_erasures(backend.checkpoints, "new") == []
    app = graph.with_backend(backend)
    assert EMAIL not in json.dumps(app.get_state("old").values)
    assert json.dumps(app.get_state("new").values).count(EMAIL) == 3  # email and two notes
    assert run_retention(backend, policies={graph.name: policy}, clock=clock).erased == []
