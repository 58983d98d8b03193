"""Approval rules (`durable_graph.signoff`), on every backend: the requester may not approve,
two distinct people must, the same person counts once, every approver is in the hash chain,
no Python path resumes a governed step without an approver, and every refusal writes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from durable_graph import Command
from durable_graph.approval_rule import ApprovalRefused, ApprovalRule, Approver, SignInRequired
from durable_graph.backend import Backend
from durable_graph.bundle import build_bundle, verify_bundle
from durable_graph.checkpoint import Actor, Checkpoint, RuleInfo
from durable_graph.errors import StaleHead
from durable_graph.reading import show_document, status_document
from durable_graph.runtime import CompiledGraph
from durable_graph.signoff import (
    ApproverRequired,
    Decision,
    SignOff,
    approvals_key,
    recorded_approvals,
    rule_of,
    sign_off,
)
from durable_graph.verification import verify_thread
from examples.four_eyes import FOUR_EYES
from examples.four_eyes import graph as four_eyes

REQUEST = {"requested_by": "alice@example.com", "payee": "ACME", "amount_eur": 25_000}


def person(name: str, *, email: str | None = None) -> Approver:
    """A signed-in person: an OIDC subject, known to the ledger by email."""
    mail = email or f"{name}@example.com"
    return Approver(
        key=f"oidc:pool:{name}-sub",
        actor=Actor(kind="human", id=f"oidc:{mail}"),
        email=mail,
        method="oidc",
    )


def config(thread_id: str, approver: Any = None) -> dict[str, Any]:
    configurable: dict[str, Any] = {"thread_id": thread_id}
    if approver is not None:
        configurable["approver"] = approver
    return {"configurable": configurable}


def suspended(backend: Backend, thread_id: str) -> tuple[CompiledGraph, Checkpoint]:
    app = four_eyes.with_backend(backend)
    app.invoke(REQUEST, config(thread_id))
    head = backend.checkpoints.head_checkpoint(thread_id)
    assert head is not None and head.status == "suspended"
    return app, head


def approve(backend: Backend, app: CompiledGraph, head: Checkpoint, who: Approver) -> SignOff:
    values: dict[str, Any] = app.engine().values_of(head)
    return sign_off(backend, rule_of(app.spec.nodes, head), head, who, values=values)


def unchanged(backend: Backend, head: Checkpoint, approvals: dict[str, Any] | None = None) -> bool:
    now = backend.checkpoints.head_checkpoint(head.thread_id)
    record = backend.checkpoints.get_record(head.thread_id, approvals_key(head.step))
    found = dict(record.value) if record is not None else None
    return now is not None and now.hash == head.hash and found == approvals


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
                      method="bearer")  # fmt: skip
    with pytest.raises(SignInRequired):
        approve(backend, app, head, bearer)
    assert unchanged(backend, head)


def test_every_approver_is_in_the_hash_chain(backend: Backend) -> None:
    """Given the suspended payment
    When bob approves, bob approves again, then carol resumes it as its second approver
    Then bob's approval is recorded beside the chain and the thread waits; his second is
    refused and changes nothing; carol's resume step commits both approvals, in order, with
    the rule, and `verify`, `show` and `status` name both."""
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
    assert unchanged(backend, head, recorded)

    resumed = app.resume("pay-2", values={"approved": True}, as_node="approve_payment",
                         expected_step=head.step, approver=carol)  # fmt: skip
    assert resumed.values["outcome"] == "released"
    step = backend.checkpoints.get_checkpoint("pay-2", head.step + 1)
    assert step is not None and step.actor == carol.actor and step.signoff is not None
    assert [(a.email, a.method, a.via) for a in step.signoff.approvals] == [
        ("bob@example.com", "oidc", "api"),
        ("carol@example.com", "oidc", "python"),
    ]
    assert step.signoff.rule.approvals_required == 2
    # the completing approval wrote nothing beside the chain: the resume step is the record
    beside = backend.checkpoints.get_record("pay-2", approvals_key(head.step))
    assert beside is not None and beside.value == recorded
    report = verify_thread(backend, "pay-2")
    assert report.ok, report.reason
    assert report.approved == {step.step: ["human:oidc:bob@example.com",
                                           "human:oidc:carol@example.com"]}  # fmt: skip
    shown = show_document(backend, "pay-2", step.step)["approvals"]
    assert shown["chained"] and [a["actor"]["id"] for a in shown["approvals"]] == [
        "oidc:bob@example.com",
        "oidc:carol@example.com",
    ]


def test_editing_or_removing_the_first_approver_fails_verify_at_that_step(
    backend: Backend,
) -> None:
    """Given a payment approved by bob, then carol
    When the stored resume step's first approver is replaced, or removed (in the store, or in
    an exported bundle verified offline)
    Then `verify` fails with `hash` at that step; restored, it passes."""
    app, head = suspended(backend, "pay-t")
    approve(backend, app, head, person("bob"))
    app.resume("pay-t", values={"approved": True}, as_node="approve_payment",
               approver=person("carol"))  # fmt: skip
    store = backend.checkpoints.inner
    row = store.get_checkpoint("pay-t", head.step + 1)
    assert row is not None and row.signoff is not None
    first, second = row.signoff.approvals
    mallory = first.model_copy(update={"actor": Actor(kind="human", id="oidc:mallory@x.org")})

    for approvals in ([mallory, second], [second]):
        forged = row.signoff.model_copy(update={"approvals": approvals})
        store.rewrite_checkpoint(row.model_copy(update={"signoff": forged}))
        report = verify_thread(backend, "pay-t")
        assert (report.ok, report.first_bad_step, report.check) == (False, row.step, "hash")
    store.rewrite_checkpoint(row)
    assert verify_thread(backend, "pay-t").ok

    # Offline: an exported bundle proves both approvers, and an edited one fails the same way.
    bundle = build_bundle(backend, "pay-t")
    offline = verify_bundle(bundle)
    assert offline.ok and offline.approved[row.step] == [
        "human:oidc:bob@example.com",
        "human:oidc:carol@example.com",
    ]
    records = [dict(r) for r in bundle.records]
    records[row.step] = {**records[row.step], "signoff": {
        **records[row.step]["signoff"], "approvals": records[row.step]["signoff"]["approvals"][1:]
    }}  # fmt: skip
    edited = verify_bundle(bundle.model_copy(update={"records": records}))
    assert (edited.ok, edited.first_bad_step, edited.check) == (False, row.step, "hash")


def test_python_resumes_need_an_approver_and_pass_the_same_checks(backend: Backend) -> None:
    """Given the suspended payment
    When Python resumes it without an approver (resume, invoke(None), update_state), or as the
    requester
    Then each is refused before anything is written; with approvers in the config (LangGraph's
    `configurable`), bob's approval is recorded and carol's update_state completes the rule."""
    app, head = suspended(backend, "pay-4")

    with pytest.raises(ApproverRequired, match="approver="):
        app.resume("pay-4", values={"approved": True}, as_node="approve_payment")
    with pytest.raises(ApproverRequired):
        app.invoke(None, config("pay-4"))
    with pytest.raises(ApproverRequired):
        app.update_state(config("pay-4"), {"approved": True}, as_node="approve_payment")
    with pytest.raises(ApprovalRefused, match="requested this"):
        app.resume("pay-4", values={"approved": True}, as_node="approve_payment",
                   approver="alice@example.com")  # fmt: skip
    assert unchanged(backend, head)

    out = app.invoke(None, config("pay-4", "bob@example.com"))
    assert out["outcome"] == "pending"  # the thread still waits
    recorded = recorded_approvals(backend, head)
    assert recorded is not None and [(a["key"], a["method"]) for a in recorded["approvals"]] == [
        ("caller:bob@example.com", "caller")
    ]
    with pytest.raises(ApprovalRefused, match="already approved"):
        app.invoke(None, config("pay-4", "Bob@Example.com"))
    app.update_state(config("pay-4", "carol@example.com"), {"approved": True},
                     as_node="approve_payment")  # fmt: skip
    step = backend.checkpoints.get_checkpoint("pay-4", head.step + 1)
    assert step is not None and step.signoff is not None
    assert [a.actor.id for a in step.signoff.approvals] == [
        "bob@example.com",
        "carol@example.com",
    ]
    assert step.actor == Actor(kind="human", id="carol@example.com")
    assert verify_thread(backend, "pay-4").ok


def test_a_command_resume_and_a_past_step_update_are_governed_too(backend: Backend) -> None:
    """`invoke(Command(resume=...))` without an approver is refused; one from a past
    suspension (`update_state` with its checkpoint id) cannot decide around the rule."""
    app, head = suspended(backend, "pay-5")
    with pytest.raises(ApproverRequired):
        app.invoke(Command(update={"approved": True}), config("pay-5"))
    assert unchanged(backend, head)

    app.invoke(Command(update={"approved": False}), config("pay-5", "dave@example.com"))
    app.invoke(Command(update={"approved": False}, resume=None),
               config("pay-5", "erin@example.com"))  # fmt: skip
    done = backend.checkpoints.head_checkpoint("pay-5")
    assert done is not None and done.status == "completed"
    past = {**config("pay-5"), "configurable": {"thread_id": "pay-5",
                                                "checkpoint_id": str(head.step)}}  # fmt: skip
    before = done.hash
    with pytest.raises(ApprovalRefused, match="fork the thread"):
        app.update_state(past, {"approved": True}, as_node="approve_payment")
    after = backend.checkpoints.head_checkpoint("pay-5")
    assert after is not None and after.hash == before


def test_one_rejection_decides_at_once_and_is_chained(backend: Backend) -> None:
    """A veto needs no second person: a rejection by an eligible approver completes, and the
    resume step commits the approvals before it and the veto."""
    app, head = suspended(backend, "pay-3")
    approve(backend, app, head, person("bob"))
    values = app.engine().values_of(head)
    rule = rule_of(app.spec.nodes, head)

    vetoed = sign_off(backend, rule, head, person("dave"), decision="reject", values=values)
    assert vetoed.complete and vetoed.record is not None
    assert [a.decision for a in vetoed.record.approvals] == ["approve", "reject"]
    app.resume("pay-3", values={"approved": False}, as_node="approve_payment",
               approver=person("dave"), decision="reject")  # fmt: skip
    assert verify_thread(backend, "pay-3").ok


def test_two_completing_approvers_racing_one_resume_step_lands(backend: Backend) -> None:
    """Given bob's approval recorded, when carol and dave both complete the rule and both
    resume from the same head, then the one conditional append decides: one step lands with
    [bob, carol], the other resume is refused as stale and writes nothing."""
    app, head = suspended(backend, "pay-6")
    approve(backend, app, head, person("bob"))
    carol, dave = person("carol"), person("dave")
    by_carol, by_dave = approve(backend, app, head, carol), approve(backend, app, head, dave)
    assert by_carol.complete and by_dave.complete
    engine = app.engine()

    def decide(who: Approver, signed: SignOff) -> None:
        engine.resume("pay-6", values={"approved": True}, as_node="approve_payment", head=head,
                      decision=Decision(approver=who, signed=signed))  # fmt: skip

    decide(carol, by_carol)
    landed = backend.checkpoints.head_checkpoint("pay-6")
    with pytest.raises(StaleHead):
        decide(dave, by_dave)
    after = backend.checkpoints.head_checkpoint("pay-6")
    assert landed is not None and after is not None and after.hash == landed.hash
    resumed = backend.checkpoints.get_checkpoint("pay-6", head.step + 1)
    assert resumed is not None and resumed.signoff is not None
    assert [a.email for a in resumed.signoff.approvals] == ["bob@example.com", "carol@example.com"]


def test_evidence_the_rule_does_not_accept_is_refused(backend: Backend) -> None:
    """A caller handing `Engine.resume` approvals of its own making (another rule's list, or
    the node's rule with one approver) is refused before anything is written."""
    app, head = suspended(backend, "pay-7")
    carol = person("carol")
    alone = sign_off(backend, ApprovalRule(), head, carol)  # a one-approver rule: no write
    assert alone.complete and alone.record is not None
    node_rule = RuleInfo.model_validate(FOUR_EYES.describe())
    relabelled = alone.record.model_copy(update={"rule": node_rule})
    engine = app.engine()
    for forged, why in ((alone, "another rule"), (SignOff(True, 2, (), relabelled), "needs 2")):
        with pytest.raises(ApprovalRefused, match=why):
            engine.resume("pay-7", values={"approved": True}, as_node="approve_payment",
                          decision=Decision(approver=carol, signed=forged))  # fmt: skip
    assert unchanged(backend, head)
