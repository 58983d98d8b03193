"""A payment released under the four-eyes principle: two distinct people approve, and the person
who requested the payment may not be one of them.

    check_payment → approve_payment → release_payment        interrupt_before=["approve_payment"]

`approve_payment` carries an `ApprovalRule`: the thread suspends before it, the first approval
(through a link or the API, by a signed-in person) is recorded and the thread keeps waiting; the
second, by someone else, resumes it. `requested_by` (set by whoever starts the thread) names the
requester, whom the rule refuses. See `durable_graph.approval_rule` for the rules and why they
live on the node.
"""

from __future__ import annotations

import operator
from typing import Annotated

from pydantic import BaseModel, Field

from durable_graph import END, START, ApprovalRule, StateGraph


class PaymentState(BaseModel):
    requested_by: str = ""
    payee: str = ""
    amount_eur: float = 0.0
    risk: str = "unknown"
    approved: bool | None = None
    reviewer_comment: str = ""
    outcome: str = "pending"
    log: Annotated[list[str], operator.add] = Field(default_factory=list)


def check_payment(state: PaymentState) -> dict[str, object]:
    risk = "high" if state.amount_eur >= 10_000 else "low"
    return {"risk": risk, "log": [f"checked ({risk} risk)"]}


def approve_payment(state: PaymentState) -> dict[str, object]:
    """A no-op: the decision arrives as this node (`approved`, `reviewer_comment`)."""
    return {"log": ["reviewed"]}


def release_payment(state: PaymentState) -> dict[str, object]:
    if not state.approved:
        return {"outcome": "rejected", "log": ["not released"]}
    return {"outcome": "released", "log": [f"released EUR {state.amount_eur:,.2f}"]}


FOUR_EYES = ApprovalRule(
    approvals_required=2, requester_may_approve=False, requester_field="requested_by"
)

builder = StateGraph(PaymentState)
builder.add_node("check_payment", check_payment)
builder.add_node("approve_payment", approve_payment, approval=FOUR_EYES)
builder.add_node("release_payment", release_payment)
builder.add_edge(START, "check_payment")
builder.add_edge("check_payment", "approve_payment")
builder.add_edge("approve_payment", "release_payment")
builder.add_edge("release_payment", END)

graph = builder.compile(interrupt_before=["approve_payment"], name="examples.four_eyes:graph")
