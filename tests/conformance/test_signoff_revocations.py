"""Operator certificates expire and can be revoked (`operator_validity.py`,
`operator_registry.py`), on every backend: an expired or revoked certificate is refused at
decision time with nothing written; approvals made before a later revocation keep verifying, in
the store and in a bundle that carries the revocations; an approval dated after a revocation or
an expiry fails `verify` at its step; and a revocation list someone altered is detected."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from durable_graph.approval_rule import ApprovalRefused
from durable_graph.backend import Backend
from durable_graph.bundle import build_bundle, verify_bundle
from durable_graph.checkpoint import Checkpoint
from durable_graph.clock import ManualClock, iso
from durable_graph.operator_keys import OperatorKey, enrol
from durable_graph.operator_registry import (
    OPERATORS_NAMESPACE,
    REVOCATIONS_KEY,
    enrolments,
    list_enrolment,
    revocations_of,
    revoke,
)
from durable_graph.operator_validity import status_of
from durable_graph.runtime import CompiledGraph
from durable_graph.signing import Ed25519Signer
from durable_graph.verification import verify_thread
from examples.four_eyes import graph as four_eyes
from tests.conformance.test_signoff import REQUEST, config, unchanged
from tests.conformance.test_signoff_operators import at_step, decide, ledger_key, rechained

HOUR = 3600.0


def enrolled(backend: Backend, identity: str, clock: ManualClock, hours: float) -> OperatorKey:
    """A fresh key for `identity`, enrolled by the ledger key now for `hours`, and listed."""
    private = ed25519.Ed25519PrivateKey.generate()
    public = Ed25519Signer(private).public_key()
    until = clock.now() + timedelta(hours=hours)
    certificate = enrol(ledger_key(backend), identity, public, clock, until)
    list_enrolment(backend.checkpoints, certificate)
    return OperatorKey(private, certificate)


def waiting(
    backend: Backend, clock: ManualClock, thread_id: str
) -> tuple[CompiledGraph, Checkpoint]:
    """The four-eyes payment (alice requests), suspended, on `clock`'s time."""
    app = four_eyes.with_backend(backend, clock=clock)
    app.invoke(REQUEST, config(thread_id))
    head = backend.checkpoints.head_checkpoint(thread_id)
    assert head is not None and head.status == "suspended"
    return app, head


def revoke_bob(backend: Backend, clock: ManualClock, reason: str = "laptop stolen") -> None:
    revoke(backend.checkpoints, ledger_key(backend), "bob@example.com", reason=reason,
           by="os:security@host", clock=clock)  # fmt: skip


def test_expired_and_revoked_certificates_are_refused_and_write_nothing(
    backend: Backend, clock: ManualClock
) -> None:
    """Given operators enrolled for a day: bob, carol; and dave for an hour
    When, two hours on, dave approves; and after bob's certificates are revoked, bob approves
    Then each is refused naming the certificate and why (expired at / revoked at, by whom,
    the reason), the thread's head and its approvals are unchanged; `operator list` reports
    each status; bob re-enrolled with a new key after the revocation decides again."""
    bob = enrolled(backend, "bob@example.com", clock, 24)
    carol = enrolled(backend, "carol@example.com", clock, 24)
    dave = enrolled(backend, "dave@example.com", clock, 1)
    app, head = waiting(backend, clock, "rv-1")
    clock.advance(2 * HOUR)

    with pytest.raises(ApprovalRefused, match=r"certificate for dave@example\.com .* expired at"):
        decide(app, "rv-1", dave.approver())
    revoke_bob(backend, clock)
    clock.advance(1)
    with pytest.raises(ApprovalRefused, match=r"revoked at .* by os:security@host \(laptop stolen"):
        decide(app, "rv-1", bob.approver())
    assert unchanged(backend, head)

    statuses = {
        c.identity: status_of(c, revocations_of(backend.checkpoints, backend.signer), clock.now())
        for c in enrolments(backend.checkpoints)
    }
    assert statuses["dave@example.com"]["status"] == "expired"
    assert statuses["bob@example.com"]["status"] == "revoked"
    assert statuses["bob@example.com"]["reason"] == "laptop stolen"
    assert statuses["carol@example.com"] == {"status": "active"}

    again = enrolled(backend, "bob@example.com", clock, 24)
    decide(app, "rv-1", again.approver())
    decide(app, "rv-1", carol.approver())
    report = verify_thread(backend, "rv-1")
    assert report.ok, report.reason


def approved_then_revoked(backend: Backend, clock: ManualClock, thread_id: str) -> Checkpoint:
    """bob and carol approve the payment; an hour later bob's certificates are revoked."""
    bob = enrolled(backend, "bob@example.com", clock, 24)
    carol = enrolled(backend, "carol@example.com", clock, 24)
    app, head = waiting(backend, clock, thread_id)
    decide(app, thread_id, bob.approver())
    decide(app, thread_id, carol.approver())
    clock.advance(HOUR)
    revoke_bob(backend, clock)
    step = backend.checkpoints.get_checkpoint(thread_id, head.step + 1)
    assert step is not None and step.signoff is not None
    return step


def test_approvals_made_before_a_revocation_stay_valid_in_store_and_bundle(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a payment approved by bob and carol, and bob revoked an hour later
    When the thread is verified, and exported as a bundle verified offline
    Then both pass and name both approvers; the bundle carries the signed revocation."""
    step = approved_then_revoked(backend, clock, "rv-2")
    report = verify_thread(backend, "rv-2")
    assert report.ok, report.reason
    assert len(report.approved[step.step]) == 2
    bundle = build_bundle(backend, "rv-2")
    [carried] = bundle.revocations
    assert carried["identity"] == "bob@example.com" and carried["reason"] == "laptop stolen"
    offline = verify_bundle(bundle, trusted=[ledger_key(backend).public_key()])
    assert offline.ok, offline.reason


def redated(rows: list[Checkpoint], step: int, key: OperatorKey, at: str) -> list[Checkpoint]:
    """A tamper by someone with the operator's (stolen) key and write access: the last
    approval of `step` dated `at` and re-signed with `key`, every hash from there recomputed."""
    out: list[Checkpoint] = []
    for row in rows:
        if row.step == step and row.signoff is not None:
            *rest, last = row.signoff.approvals
            proof = last.operator
            assert proof is not None
            signed = key.prove(proof.thread_id, proof.step, proof.head_hash, last.decision, at)
            last = last.model_copy(update={"at": at, "operator": signed})
            row = row.model_copy(
                update={"signoff": row.signoff.model_copy(update={"approvals": [*rest, last]})}
            )
        out.append(row)
    return rechained(out, step, lambda approval: approval)


def written_at(rows: list[Checkpoint], step: int, at: str) -> list[Checkpoint]:
    """A tamper: the step that bob's approval completes dated `at`, hashes recomputed."""
    moved = [r.model_copy(update={"created_at": at}) if r.step == step else r for r in rows]
    return rechained(moved, step, lambda approval: approval)


@pytest.mark.parametrize("after", ["revocation", "expiry", "step after revocation"])
def test_an_approval_dated_after_a_revocation_or_expiry_fails_verify_at_its_step(
    backend: Backend, clock: ManualClock, after: str
) -> None:
    """Given carol's then bob's approval of a payment (bob's completes it), bob's certificate
    later revoked (or expired), and someone with bob's key and write access to the store
    When bob's approval is re-dated after the revocation (or expiry) and re-signed with his
    key, or the step it completes is dated after the revocation, every hash recomputed
    Then `verify` and the bundle fail `signoff` at that step, naming the revocation or the
    expiry: a completing approval is judged at the time its step was written too."""
    bob = enrolled(backend, "bob@example.com", clock, 24)
    carol = enrolled(backend, "carol@example.com", clock, 24)
    app, head = waiting(backend, clock, f"rv-3{after[0]}{len(after)}")
    thread_id = head.thread_id
    decide(app, thread_id, carol.approver())
    decide(app, thread_id, bob.approver())
    clock.advance(HOUR)
    if after == "expiry":
        late, says = iso(clock.now() + timedelta(hours=30)), "expired at"
    else:
        revoke_bob(backend, clock)
        late, says = iso(clock.now() + timedelta(seconds=1)), "was revoked at"
    step = head.step + 1

    def tamper(rows: list[Checkpoint]) -> list[Checkpoint]:
        if after.startswith("step"):
            return written_at(rows, step, late)
        return redated(rows, step, bob, late)

    store = backend.checkpoints.inner
    bundle = build_bundle(backend, thread_id)
    assert verify_bundle(bundle).ok
    for row in tamper(store.list_checkpoints(thread_id, newest_first=False)):
        store.rewrite_checkpoint(row)
    backend.checkpoints.forget_thread(thread_id)
    assert at_step(verify_thread(backend, thread_id), step, says)

    rows = [Checkpoint.model_validate(r) for r in bundle.records]
    edited = [r.model_dump(mode="json") for r in tamper(rows)]
    assert at_step(verify_bundle(bundle.model_copy(update={"records": edited})), step, says)


def test_an_altered_or_removed_revocation_is_detected(backend: Backend, clock: ManualClock) -> None:
    """Given a payment approved by bob and carol, then bob revoked, then dave revoked
    When someone with write access moves bob's revocation later, or removes it from the list
    (in the store, and in an exported bundle)
    Then `verify` fails `signoff` at the step bob approved, naming the altered entry, an
    operator's decision on another thread is refused until the list is repaired (nothing
    written), and the bundle fails offline; restored, all pass."""
    step = approved_then_revoked(backend, clock, "rv-4")
    enrolled(backend, "dave@example.com", clock, 24)
    revoke(backend.checkpoints, ledger_key(backend), "dave@example.com", reason="left",
           by="os:security@host", clock=clock)  # fmt: skip
    carol = enrolled(backend, "carol@example.com", clock, 24)
    app, head = waiting(backend, clock, "rv-5")
    store = backend.checkpoints
    original = store.get_record(OPERATORS_NAMESPACE, REVOCATIONS_KEY)
    assert original is not None
    entries = list(original.value["revocations"])
    bundle = build_bundle(backend, "rv-4")
    later = {**entries[0], "revoked_at": iso(clock.now() + timedelta(days=9))}
    edits = {
        "moved later": ([later, entries[1]], "revocation 1 (bob@example.com"),
        "removed": ([entries[1]], "out of its place"),
    }
    for name, (edited, says) in edits.items():
        current = store.get_record(OPERATORS_NAMESPACE, REVOCATIONS_KEY)
        assert current is not None
        store.put_record(OPERATORS_NAMESPACE, REVOCATIONS_KEY, {"revocations": edited},
                         expected_version=current.version)  # fmt: skip
        assert at_step(verify_thread(backend, "rv-4"), step.step, says), name
        with pytest.raises(ApprovalRefused, match="revoked operator certificates was altered"):
            decide(app, "rv-5", carol.approver())
        assert unchanged(backend, head), name
        offline = verify_bundle(bundle.model_copy(update={"revocations": edited}))
        assert at_step(offline, step.step, says), name

    current = store.get_record(OPERATORS_NAMESPACE, REVOCATIONS_KEY)
    assert current is not None
    store.put_record(OPERATORS_NAMESPACE, REVOCATIONS_KEY, {"revocations": entries},
                     expected_version=current.version)  # fmt: skip
    assert verify_thread(backend, "rv-4").ok
    assert verify_bundle(bundle).ok
    decide(app, "rv-5", carol.approver())
    assert recorded(backend, head)


def recorded(backend: Backend, head: Checkpoint) -> bool:
    return backend.checkpoints.get_record(head.thread_id, f"approvals#{head.step}") is not None
