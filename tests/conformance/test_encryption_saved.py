"""Encryption at rest of what a thread stores outside its records, on every backend: the bytes
a node saves with `ctx.save` (content-addressed, so sealed deterministically under the thread's
data key: the same bytes keep their ref within a thread, another thread's key gives another
object) and who approved (the `approvals#<step>` record collecting a two-person rule's
approvals, an approval link's `approval#` record). No stored byte holds the plaintext, reads
give it back with the key, and destroying the key makes the saved bytes unreadable while
`verify` passes.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from durable_graph import END, START, NodeContext, StateGraph
from durable_graph.approval_rule import Approver
from durable_graph.checkpoint import Actor, PayloadRef
from durable_graph.clock import ManualClock
from durable_graph.erasure import erase
from durable_graph.errors import DataKeyUnavailable, PayloadCorrupted
from durable_graph.reading import status_document
from durable_graph.sealed_payloads import raw_payloads
from durable_graph.signoff import approvals_key, recorded_approvals, rule_of, sign_off
from durable_graph.verification import verify_thread
from examples.four_eyes import graph as four_eyes
from tests.conformance.test_encryption import ALICE, Encrypted, holds

SCAN = "SCAN-OF-PASSPORT-8812-jane"
COMMENT = "checked IBAN with Jane Roe by phone"


class Filing(BaseModel):
    scan: dict[str, Any] = {}
    again: dict[str, Any] = {}


def keep(state: Filing, ctx: NodeContext) -> dict[str, Any]:
    ref = ctx.save(f"{SCAN} ".encode(), "text/plain; charset=utf-8")
    again = ctx.save(f"{SCAN} ".encode(), "text/plain; charset=utf-8")
    return {"scan": ref.model_dump(mode="json"), "again": again.model_dump(mode="json")}


def _graph() -> Any:
    builder = StateGraph(Filing)
    builder.add_node("keep", keep)
    builder.add_edge(START, "keep")
    builder.add_edge("keep", END)
    return builder.compile(name="tests.conformance.test_encryption_saved:graph")


graph = _graph()


def test_saved_payloads_are_sealed_stable_per_thread_and_shredded(
    encrypted: Encrypted, clock: ManualClock
) -> None:
    """Given a store with encryption on and a node that saves the same bytes twice
    When two threads run it
    Then each thread's two saves share one ref, the two threads' refs differ, no stored byte
    holds the plaintext, `ctx.load` (the backend's payload store) reads it back, and after the
    first thread is erased whole its object is deleted and its key destroyed, while the
    second's opens, and both verify."""
    backend = encrypted.backend
    app = graph.with_backend(backend, clock=clock)
    a = app.invoke({}, thread_id="a")
    b = app.invoke({}, thread_id="b")

    assert a["scan"] == a["again"], "the same bytes, the same ref, within a thread"
    assert a["scan"]["sha256"] != b["scan"]["sha256"], "another thread, another object"
    assert a["scan"]["content_type"].endswith("; sealed=aes-256-gcm")
    stored = encrypted.stored()
    assert holds(stored, "dgx2"), "payload objects are read"
    assert not holds(stored, SCAN)
    ref_a, ref_b = PayloadRef.model_validate(a["scan"]), PayloadRef.model_validate(b["scan"])
    assert backend.payloads.get(ref_a) == f"{SCAN} ".encode()
    assert app.invoke({}, thread_id="a")["scan"] == a["scan"], "a re-run saves nothing new"

    record = erase(backend, "a", reason="GDPR Art. 17 #15", actor=ALICE)

    assert record is not None and record.data_key
    assert backend.checkpoints.keys is not None
    with pytest.raises(DataKeyUnavailable, match="destroyed"):
        backend.checkpoints.keys.cipher("a")
    with pytest.raises(PayloadCorrupted, match="missing"):  # and the object is deleted
        raw_payloads(backend.payloads).get(ref_a)
    assert backend.payloads.get(ref_b) == f"{SCAN} ".encode()
    for thread in ("a", "b"):
        report = verify_thread(backend, thread)
        assert report.ok, report.reason


def person(name: str) -> Approver:
    mail = f"{name}@example.com"
    return Approver(key=f"oidc:pool:{name}-sub", actor=Actor(kind="human", id=f"oidc:{mail}"),
                    email=mail, method="oidc")  # fmt: skip


def test_approval_records_are_sealed(encrypted: Encrypted, clock: ManualClock) -> None:
    """Given a payment waiting for two approvers on an encrypted store
    When bob approves with a comment, and an approval link's record names its approver
    Then neither bob's name, email nor comment, nor the link's approver, is stored in the
    clear, while `status` and the approval code read them back; after carol completes the
    rule, the thread verifies."""
    backend = encrypted.backend
    app = four_eyes.with_backend(backend, clock=clock)
    request = {"requested_by": "alice@example.com", "payee": "ACME", "amount_eur": 25_000}
    app.invoke(request, {"configurable": {"thread_id": "pay"}})
    head = backend.checkpoints.head_checkpoint("pay")
    assert head is not None
    values = app.engine().values_of(head)
    rule = rule_of(app.spec.nodes, head)
    signed = sign_off(backend, rule, head, person("bob"), values=values, comment=COMMENT)
    assert not signed.complete
    link = {"state": "accepted", "step": head.step, "sub": "dora@example.com", "comment": COMMENT}
    backend.checkpoints.put_record("pay", "approval#0f0f", link, expected_version=None)

    stored = encrypted.stored()
    for secret in ("bob@example.com", "bob-sub", COMMENT, "dora@example.com"):
        assert not holds(stored, secret), secret
    recorded = recorded_approvals(backend, head)
    assert recorded is not None
    [entry] = recorded["approvals"]
    assert (entry["email"], entry["comment"]) == ("bob@example.com", COMMENT)
    assert status_document(backend, "pay")["approvals"] == recorded
    found = backend.checkpoints.get_record("pay", "approval#0f0f")
    assert found is not None and found.value == link
    raw = backend.checkpoints.inner.get_record("pay", approvals_key(head.step))
    assert raw is not None and "approvals" not in raw.value and raw.value["step"] == head.step

    app.resume("pay", values={"approved": True}, as_node="approve_payment",
               expected_step=head.step, approver=person("carol"))  # fmt: skip
    report = verify_thread(backend, "pay")
    assert report.ok, report.reason
