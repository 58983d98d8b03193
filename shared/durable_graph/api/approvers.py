"""Who is deciding, as the approval rules (`durable_graph.signoff`) need to know it.

The API's authenticators answer with an `Identity` (`identity.py`); `approver_of` turns it into
the `Approver` that `sign_off` checks: the identity's stable key (two approvals with one key are
one person), its email, and the actor the ledger records.
"""

from __future__ import annotations

from durable_graph.api.identity import Identity
from durable_graph.api.models import ApprovalsView, approvals_view
from durable_graph.approval_rule import Approver
from durable_graph.signoff import SignOff


def approver_of(identity: Identity) -> Approver:
    """An authenticated caller as an approver."""
    return Approver(
        key=identity.key, actor=identity.actor, email=identity.email, method=identity.method
    )


def pending_view(signed: SignOff | None) -> ApprovalsView | None:
    """The approvals recorded so far, when a rule still needs more."""
    return None if signed is None else approvals_view(signed.required, signed.approvals)


__all__ = ["approver_of", "pending_view"]
