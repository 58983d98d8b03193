"""A rule on a node inside a subgraph, on every backend: deciding the parent is deciding that
node, so the parent's approver (Python `resume(..., approver=...)`, `Command` with
`configurable.approver`) is checked, tallied and chained under the subgraph node's two-person
rule, and the subgraph's own resume step commits the same approvers."""

from __future__ import annotations

from typing import Any

import pytest

from durable_graph import END, START, Command, StateGraph, interrupt
from durable_graph.approval_rule import ApprovalRefused
from durable_graph.backend import Backend
from durable_graph.checkpoint import Checkpoint
from durable_graph.runtime import CompiledGraph
from durable_graph.signoff import ApproverRequired, recorded_approvals
from durable_graph.subgraphs import subgraph_thread_id
from durable_graph.verification import verify_thread
from examples.four_eyes import FOUR_EYES, PaymentState
from tests.conformance.test_signoff import REQUEST, config, person


def approve_payment(state: PaymentState) -> dict[str, Any]:
    answer = interrupt({"approve": state.payee, "amount_eur": state.amount_eur})
    return {"approved": bool(answer), "log": ["reviewed"]}


def release_payment(state: PaymentState) -> dict[str, Any]:
    return {"outcome": "released" if state.approved else "rejected"}


def _inner() -> CompiledGraph:
    builder = StateGraph(PaymentState)
    builder.add_node("approve_payment", approve_payment, approval=FOUR_EYES)
    builder.add_node("release_payment", release_payment)
    builder.add_edge(START, "approve_payment")
    builder.add_edge("approve_payment", "release_payment")
    builder.add_edge("release_payment", END)
    return builder.compile(name="tests.conformance.test_signoff_subgraphs:inner")


builder = StateGraph(PaymentState)
builder.add_node("payment", _inner())
builder.add_edge(START, "payment")
builder.add_edge("payment", END)
outer = builder.compile(name="tests.conformance.test_signoff_subgraphs:outer")


def waiting(backend: Backend, thread_id: str) -> tuple[CompiledGraph, Checkpoint, str]:
    """The parent suspended on its subgraph's governed node; its head and the subgraph thread."""
    app = outer.with_backend(backend)
    out = app.invoke(REQUEST, config(thread_id))
    assert out["__interrupt__"][0].value == {"approve": "ACME", "amount_eur": 25_000.0}
    head = backend.checkpoints.head_checkpoint(thread_id)
    assert head is not None and head.status == "suspended" and head.interrupt is not None
    inner = subgraph_thread_id(thread_id, head.interrupt.task_id or "")
    return app, head, inner


def both_chained(backend: Backend, thread_id: str, inner: str) -> None:
    """The parent's resume step and the subgraph's both commit bob then carol, and verify."""
    for tid in (thread_id, inner):
        report = verify_thread(backend, tid)
        assert report.ok, report.reason
        assert list(report.approved.values()) == [
            ["human:oidc:bob@example.com", "human:oidc:carol@example.com"]
        ], tid
    final = backend.checkpoints.head_checkpoint(thread_id)
    assert final is not None and final.status == "completed"
    assert final.values["outcome"] == "released"


def test_a_subgraph_rule_gets_the_parents_python_approver(backend: Backend) -> None:
    """Given a payment whose subgraph waits at a four-eyes node
    When the parent is resumed without an approver, as the requester, by bob, by bob again,
    then by carol (Python `resume(..., approver=...)`)
    Then the first two are refused and write nothing, bob's approval is recorded and the
    thread keeps waiting, his second is refused, and carol's completes the rule: the parent's
    and the subgraph's resume steps both chain bob and carol."""
    app, head, inner = waiting(backend, "sub-1")
    bob, carol = person("bob"), person("carol")

    with pytest.raises(ApproverRequired):
        app.resume("sub-1", resume_value=True)
    with pytest.raises(ApprovalRefused, match="requested this"):
        app.resume("sub-1", resume_value=True, approver=person("alice"))
    assert recorded_approvals(backend, head) is None
    pending = app.resume("sub-1", resume_value=True, approver=bob)
    assert pending.step == head.step and pending.status == "suspended"
    with pytest.raises(ApprovalRefused, match="already approved"):
        app.resume("sub-1", resume_value=True, approver=bob)
    inner_head = backend.checkpoints.head_checkpoint(inner)
    assert inner_head is not None and inner_head.status == "suspended"

    app.resume("sub-1", resume_value=True, approver=carol)

    both_chained(backend, "sub-1", inner)


def test_a_subgraph_rule_gets_the_approver_of_a_command(backend: Backend) -> None:
    """Given the same waiting payment
    When `invoke(Command(resume=True))` comes without `configurable.approver`, then with bob's,
    then carol's
    Then the first is refused, bob's is recorded, carol's completes it, chained in both."""
    app, _, inner = waiting(backend, "sub-2")

    with pytest.raises(ApproverRequired):
        app.invoke(Command(resume=True), config("sub-2"))
    out = app.invoke(Command(resume=True), config("sub-2", person("bob")))
    assert out["outcome"] == "pending" and "__interrupt__" in out
    out = app.invoke(Command(resume=True), config("sub-2", person("carol")))
    assert out["outcome"] == "released"

    both_chained(backend, "sub-2", inner)
