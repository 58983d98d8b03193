"""How a graph's suspensions become approval links, and a link's decision becomes state."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_TTL_SECONDS = 3 * 24 * 3600


def approved_flag(decision: str, comment: str) -> dict[str, Any]:
    """Default decision → state update: `approved` and `reviewer_comment` (the seed example)."""
    return {"approved": decision == "approve", "reviewer_comment": comment}


def decision_from_flag(values: Mapping[str, Any]) -> str | None:
    """Inverse of `approved_flag`, to tell a losing approver what won."""
    approved = values.get("approved")
    return None if approved is None else ("approve" if approved else "reject")


@dataclass(frozen=True)
class ApprovalPolicy:
    """How a graph's suspensions become approval links, and decisions become state.

    Attributes:
        decisions: the buttons on the page, and the only decisions a link accepts.
        ttl_seconds: how long a link may decide.
        subject: who unbound links are issued to; recorded as the deciding actor when nobody
            signed in.
        show: state fields shown on the page, in order; empty shows every non-empty field.
        values_for: `(decision, comment) -> state update` injected as the interrupted node.
        decision_of: state after a decision → the decision's name (for conflict answers).
        approvers: named approvers (emails or user names): one link each, bound to that name;
            a signed-in person may decide only with their own. Empty: one unbound link.
        require_sign_in: deciding through a link needs a signed-in person (401 otherwise),
            whose identity the ledger records. Links still work as the page's address.
    """

    decisions: tuple[str, ...] = ("approve", "reject")
    ttl_seconds: int = DEFAULT_TTL_SECONDS
    subject: str = "approver"
    show: tuple[str, ...] = ()
    values_for: Callable[[str, str], dict[str, Any]] = approved_flag
    decision_of: Callable[[Mapping[str, Any]], str | None] = decision_from_flag
    approvers: tuple[str, ...] = ()
    require_sign_in: bool = False


__all__ = ["DEFAULT_TTL_SECONDS", "ApprovalPolicy", "approved_flag", "decision_from_flag"]
