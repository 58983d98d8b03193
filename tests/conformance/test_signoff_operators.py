"""Operator keys (`durable_graph.operator_keys`), on every backend: operators enrolled by the
ledger key decide as named identities, each approval signed; two-person rules count distinct
certified identities, the requester is refused, an uncertified key writes nothing, and `verify`
and `verify --bundle` name the step of an altered certificate, a signature by a key nobody
enrolled, and a swapped identity, even where whoever tampered recomputed every hash."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from durable_graph.approval_rule import ApprovalRefused, Approver
from durable_graph.backend import Backend
from durable_graph.bundle import build_bundle, verify_bundle
from durable_graph.checkpoint import Actor, Approval, Checkpoint, ParentRef
from durable_graph.clock import Clock, ManualClock, SystemClock
from durable_graph.errors import InvalidInput
from durable_graph.ledger_report import VerifyReport
from durable_graph.operator_keys import OperatorKey, enrol
from durable_graph.operator_proof import approval_bytes
from durable_graph.runtime import CompiledGraph
from durable_graph.signing import Ed25519Signer, Signer
from durable_graph.verification import verify_thread
from tests.conformance.test_encryption import Encrypted
from tests.conformance.test_signoff import suspended, unchanged
from tests.conformance.test_signoff_subgraphs import waiting


def decide(app: CompiledGraph, thread_id: str, approver: Approver) -> None:
    """Approve the payment as `approver` (Python's resume)."""
    app.resume(thread_id, values={"approved": True}, as_node="approve_payment", approver=approver)


def operator(signer: Signer, identity: str, clock: Clock | None = None) -> OperatorKey:
    """A fresh operator key for `identity`, enrolled by `signer` (the ledger key) at `clock`'s
    time (default the real time the example apps decide at: a certificate expires, 365 days
    after it was issued by default)."""
    private = ed25519.Ed25519PrivateKey.generate()
    public = Ed25519Signer(private).public_key()
    return OperatorKey(private, enrol(signer, identity, public, clock or SystemClock()))


def ledger_key(backend: Backend) -> Signer:
    assert backend.signer is not None, "every conformance backend signs its heads"
    return backend.signer


def approved_by_operators(backend: Backend, clock: ManualClock, thread_id: str) -> Checkpoint:
    """The four-eyes payment approved by enrolled operators bob, then carol: their resume step."""
    app, head = suspended(backend, thread_id)
    signer = ledger_key(backend)
    bob, carol = (operator(signer, f"{n}@example.com") for n in ("bob", "carol"))
    decide(app, thread_id, bob.approver("bob@example.com"))
    decide(app, thread_id, carol.approver())
    step = backend.checkpoints.get_checkpoint(thread_id, head.step + 1)
    assert step is not None and step.signoff is not None
    return step


def test_enrolled_operators_approve_as_distinct_certified_identities(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a payment requested by alice, and operators enrolled by the ledger key
    When bob approves with his key, again with a second key enrolled for him, alice with hers,
    and carol completes the rule
    Then bob counts once and alice is refused (nothing written), carol's resume step chains
    both approvals with their certificates and signatures, and `verify` and an exported
    bundle pinned to the ledger key pass; pinned to another key, the certificates fail."""
    app, head = suspended(backend, "op-1")
    signer = ledger_key(backend)
    bob = operator(signer, "bob@example.com")

    decide(app, "op-1", bob.approver())
    recorded = backend.checkpoints.get_record("op-1", f"approvals#{head.step}")
    assert recorded is not None
    with pytest.raises(ApprovalRefused, match="already approved"):
        decide(app, "op-1", operator(signer, "Bob@Example.com").approver())
    with pytest.raises(ApprovalRefused, match="requested this"):
        decide(app, "op-1", operator(signer, "alice@example.com").approver())
    assert unchanged(backend, head, dict(recorded.value))

    carol = operator(signer, "carol@example.com")
    decide(app, "op-1", carol.approver())
    step = backend.checkpoints.get_checkpoint("op-1", head.step + 1)
    assert step is not None and step.signoff is not None
    assert step.actor == Actor(kind="human", id="operator:carol@example.com")
    approvals = step.signoff.approvals
    assert [(a.key, a.method) for a in approvals] == [
        ("operator:bob@example.com", "operator_key"),
        ("operator:carol@example.com", "operator_key"),
    ]
    assert [a.operator.certificate.identity for a in approvals if a.operator] == [
        "bob@example.com",
        "carol@example.com",
    ]
    assert all(
        a.operator and (a.operator.step, a.operator.head_hash) == (head.step, head.hash)
        for a in approvals
    )
    report = verify_thread(backend, "op-1")
    assert report.ok, report.reason
    assert report.approved == {step.step: ["human:operator:bob@example.com",
                                           "human:operator:carol@example.com"]}  # fmt: skip

    bundle = build_bundle(backend, "op-1")
    assert verify_bundle(bundle, trusted=[signer.public_key()]).ok
    stranger = Ed25519Signer.generate().public_key()
    pinned = verify_bundle(bundle, trusted=[stranger])
    assert at_step(pinned, step.step, "not a trusted ledger key")


def test_keys_the_ledger_key_did_not_enrol_are_refused_and_write_nothing(
    backend: Backend, clock: ManualClock
) -> None:
    """Given the suspended payment
    When bob decides with a certificate another ledger key signed, with a key his certificate
    is not for, or as an approver his certificate does not name
    Then each is refused before anything is written."""
    app, head = suspended(backend, "op-2")
    elsewhere = operator(Ed25519Signer.generate(), "bob@example.com")
    with pytest.raises(ApprovalRefused, match="not a trusted ledger key"):
        decide(app, "op-2", elsewhere.approver())

    bob = operator(ledger_key(backend), "bob@example.com")
    with pytest.raises(InvalidInput, match="not this key"):
        OperatorKey(ed25519.Ed25519PrivateKey.generate(), bob.certificate)
    with pytest.raises(InvalidInput, match=r"names 'bob@example\.com', not 'carol@example\.com'"):
        bob.approver("carol@example.com")
    posing = Approver(key="operator:carol@example.com",
                      actor=Actor(kind="human", id="operator:carol@example.com"),
                      method="operator_key", operator=bob)  # fmt: skip
    with pytest.raises(ApprovalRefused, match="not the identity its operator certificate names"):
        decide(app, "op-2", posing)
    keyless = Approver(key="operator:dave@example.com",
                       actor=Actor(kind="human", id="operator:dave@example.com"),
                       method="operator_key")  # fmt: skip
    with pytest.raises(ApprovalRefused, match="needs the operator's key"):
        decide(app, "op-2", keyless)
    assert unchanged(backend, head)


Tamper = Callable[[Approval], Approval]


def altered_certificate(approval: Approval) -> Approval:
    """The certificate says bob is someone else (and the approval agrees with it)."""
    assert approval.operator is not None
    certificate = approval.operator.certificate.model_copy(update={"identity": "mallory@x.org"})
    proof = approval.operator.model_copy(update={"certificate": certificate})
    return approval.model_copy(update={"operator": proof, "key": "operator:mallory@x.org",
                                       "actor": Actor(kind="human", id="operator:mallory@x.org"),
                                       "email": "mallory@x.org"})  # fmt: skip


def unenrolled_signature(approval: Approval) -> Approval:
    """The approval re-signed by a key nobody enrolled, its certificate bob's still."""
    assert approval.operator is not None
    proof = approval.operator
    signed = approval_bytes(proof.thread_id, proof.step, proof.head_hash, approval.decision,
                            approval.at)  # fmt: skip
    raw = ed25519.Ed25519PrivateKey.generate().sign(signed)
    forged = proof.model_copy(update={"signature": base64.b64encode(raw).decode("ascii")})
    return approval.model_copy(update={"operator": forged})


def swapped_identity(approval: Approval) -> Approval:
    """The approval names dave, with bob's certificate and signature."""
    return approval.model_copy(update={"key": "operator:dave@example.com",
                                       "actor": Actor(kind="human", id="operator:dave@example.com"),
                                       "email": "dave@example.com"})  # fmt: skip


TAMPERS: dict[str, tuple[Tamper, str]] = {
    "altered certificate": (altered_certificate, "is not signed by the ledger key"),
    "non-enrolled key": (unenrolled_signature, "not made by the key enrolled for bob"),
    "swapped identity": (swapped_identity, "its certificate names bob@example.com"),
}


def rechained(rows: list[Checkpoint], step: int, tamper: Tamper) -> list[Checkpoint]:
    """`rows` with the first approval of `step` tampered, that record's hash recomputed and
    every later record linked to it again: what someone with write access can do, short of
    signing."""
    out: list[Checkpoint] = []
    for row in rows:
        if row.step == step:
            assert row.signoff is not None
            first, *rest = row.signoff.approvals
            signoff = row.signoff.model_copy(update={"approvals": [tamper(first), *rest]})
            row = row.model_copy(update={"signoff": signoff})
        elif row.step > step:
            previous = out[-1]
            parent = ParentRef(thread_id=row.thread_id, step=previous.step, hash=previous.hash)
            row = row.model_copy(update={"prev_hash": previous.hash, "parent": parent})
        if row.step >= step:
            row = row.model_copy(update={"hash": row.with_io_restored().compute_hash()})
        out.append(row)
    return out


def at_step(report: VerifyReport, step: int, reason: str) -> bool:
    """The report fails `signoff` at `step` for `reason` (and `hash` nowhere)."""
    assert not report.ok
    assert all(p["check"] != "hash" for p in report.problems), report.problems
    return any(
        p["step"] == step and p["check"] == "signoff" and reason in str(p["reason"])
        for p in report.problems
    )


@pytest.mark.parametrize("tamper", sorted(TAMPERS))
def test_tampered_operator_approvals_fail_verify_at_their_step(
    backend: Backend, clock: ManualClock, tamper: str
) -> None:
    """Given a payment approved by enrolled operators bob and carol
    When bob's approval is tampered with (its certificate altered, re-signed by a key nobody
    enrolled, or made to name dave) and every hash recomputed, in the store and in an
    exported bundle
    Then `verify` and `verify_bundle` fail `signoff` at that step, saying which; restored, the
    store verifies again."""
    change, reason = TAMPERS[tamper]
    step = approved_by_operators(backend, clock, f"op-t-{tamper[:3]}")
    thread_id = step.thread_id
    store = backend.checkpoints.inner
    original = store.list_checkpoints(thread_id, newest_first=False)
    bundle = build_bundle(backend, thread_id)

    for row in rechained(original, step.step, change):
        store.rewrite_checkpoint(row)
    backend.checkpoints.forget_thread(thread_id)
    assert at_step(verify_thread(backend, thread_id), step.step, reason)

    for row in original:
        store.rewrite_checkpoint(row)
    backend.checkpoints.forget_thread(thread_id)
    assert verify_thread(backend, thread_id).ok

    rows = [Checkpoint.model_validate(r) for r in bundle.records]
    edited = [r.model_dump(mode="json") for r in rechained(rows, step.step, change)]
    offline = verify_bundle(bundle.model_copy(update={"records": edited}))
    assert at_step(offline, step.step, reason)


def test_operators_deciding_a_subgraph_rule_verify_in_both_threads(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a payment whose subgraph waits at a four-eyes node
    When enrolled operators bob and carol resume the parent
    Then the parent's and the subgraph's resume steps both chain their signed approvals (made
    over the parent's head), and both threads verify."""
    app, _, inner = waiting(backend, "op-s")
    signer = ledger_key(backend)
    for name in ("bob", "carol"):
        key = operator(signer, f"{name}@example.com")
        app.resume("op-s", resume_value=True, approver=key.approver())
    for tid in ("op-s", inner):
        report = verify_thread(backend, tid)
        assert report.ok, report.reason
        assert list(report.approved.values()) == [
            ["human:operator:bob@example.com", "human:operator:carol@example.com"]
        ], tid


def test_operator_approvals_verify_with_encryption_at_rest(
    encrypted: Encrypted, clock: ManualClock
) -> None:
    """Given a store with encryption at rest on (the pending approvals record sealed)
    When enrolled operators bob and carol approve the payment
    Then the resume step chains both signed approvals and the thread verifies."""
    step = approved_by_operators(encrypted.backend, clock, "op-e")
    assert step.signoff is not None and all(a.operator for a in step.signoff.approvals)
    report = verify_thread(encrypted.backend, "op-e")
    assert report.ok, report.reason
