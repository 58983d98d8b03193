"""Approval rules (`durable_graph.signoff`), on every backend: the requester may not approve,
two distinct people must, the same person counts once, and every refusal writes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from durable_graph.approval_rule import ApprovalRefused, Approver, SignInRequired
from durable_graph.backend import Backend
from durable_graph.checkpoint import Actor, Checkpoint
from durable_graph.reading import status_document
from durable_graph.runtime import CompiledGraph
from durable_graph.signoff import SignOff, approvals_key, recorded_approvals, rule_of, sign_off
from examples.four_eyes import graph as four_eyes

REQUEST = {"requested_by": "alice@example.com", "payee": "ACME", "amount_eur": 25_000}


def person(name: str, *, email: str | None = None) -> Approver:
    """A signed-in person: an OIDC subject, known to the ledger by email."""
    mail = email or f"{name}@example.com"
    return Approver(
        key=f"oidc:pool:{name}-sub", actor=Actor(kind="human", id=f"oidc:{mail}"), email=mail
    )


def suspended(backend: Backend, thread_id: str) -> tuple[CompiledGraph, Checkpoint]:
    app = four_eyes.with_backend(backend)
    app.invoke(REQUEST, {"configurable": {"thread_id": thread_id}})
    head = backend.checkpoints.head_checkpoint(thread_id)
    assert head is not None and head.status == "suspended"
    return app, head


def approve(backend: Backend, app: CompiledGraph, head: Checkpoint, who: Approver) -> SignOff:
    values: dict[str, Any] = app.engine().values_of(head)
    return sign_off(backend, rule_of(app.spec.nodes, head), head, who, values=values)


def unchanged(backend: Backend, head: Checkpoint) -> bool:
    now = backend.checkpoints.head_checkpoint(head.thread_id)
    record = backend.checkpoints.get_record(head.thread_id, approvals_key(head.step))
    return now is not None and now.hash == head.hash and record is None


def test_requester_and_unverified_deciders_are_refused_and_nothing_is_written(
    backend: Backend,
) -> None:
    """Given a payment requested by alice, suspended before its four-eyes release
    When alice (signed in by another subject, same email), and an unverified bearer approve
    Then 403 and 401 errors, and neither the chain nor the approvals record changed."""
    app, head = suspended(backend, "pay-1")

    with pytest.raises(ApprovalRefused, match="requested this"):
        approve(backend, app, head, person("alice-sso", email="Alice@Example.com"))
    bearer = Approver(key="link:approver", actor=Actor(kind="human", id="approver via link"),
                      authenticated=False)  # fmt: skip
    with pytest.raises(SignInRequired):
        approve(backend, app, head, bearer)
    assert unchanged(backend, head)


def test_two_distinct_people_resume_the_thread_the_same_one_counts_once(backend: Backend) -> None:
    """Given the suspended payment
    When bob approves, bob approves again, then carol approves and the thread is resumed
    Then bob's first approval is recorded and the thread still waits; his second is refused
    and changes nothing; carol's completes the rule, and the resume step's actor is carol."""
    app, head = suspended(backend, "pay-2")
    bob, carol = person("bob"), person("carol")

    first = approve(backend, app, head, bob)
    assert (first.complete, first.required) == (False, 2)
    recorded = recorded_approvals(backend, head)
    assert recorded is not None and [a["actor"]["id"] for a in recorded["approvals"]] == [
        "oidc:bob@example.com"
    ]
    assert status_document(backend, "pay-2")["approvals"] == recorded  # `status` shows it
    with pytest.raises(ApprovalRefused, match="already approved"):
        approve(backend, app, head, bob)
    assert recorded_approvals(backend, head) == recorded
    assert backend.checkpoints.head_checkpoint("pay-2").hash == head.hash  # type: ignore[union-attr]

    second = approve(backend, app, head, carol)
    assert second.complete and [a["email"] for a in second.approvals] == [
        "bob@example.com",
        "carol@example.com",
    ]
    resumed = app.resume("pay-2", values={"approved": True}, as_node="approve_payment",
                         expected_step=head.step, actor=carol.actor)  # fmt: skip
    assert resumed.values["outcome"] == "released"
    step = backend.checkpoints.get_checkpoint("pay-2", head.step + 1)
    assert step is not None and step.actor == carol.actor
    assert approve(backend, app, head, carol).complete  # a retry of the completing approval


def test_one_rejection_decides_at_once(backend: Backend) -> None:
    """A veto needs no second person: a rejection by an eligible approver completes."""
    app, head = suspended(backend, "pay-3")
    values = app.engine().values_of(head)
    rule = rule_of(app.spec.nodes, head)

    vetoed = sign_off(backend, rule, head, person("dave"), decision="reject", values=values)

    assert vetoed.complete and unchanged(backend, head)
