"""`sign_off`: the one check every decision path makes before it resumes a thread under an
`ApprovalRule` (`approval_rule.py` says what the rules mean and why they live on the node).

Approvals before the last are kept in the thread's `approvals#<step>` record (created, then
compare-and-set), beside the chain like the approval links' records: the store alone tells who
approved so far (the API's thread view and the approval page show it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from durable_graph.approval_rule import (
    REJECTIONS,
    ApprovalRefused,
    ApprovalRule,
    Approver,
    SignInRequired,
    summary,
)
from durable_graph.backend import Backend
from durable_graph.checkpoint import Checkpoint
from durable_graph.clock import Clock, SystemClock, iso
from durable_graph.errors import RecordConflict

APPROVALS_PREFIX = "approvals#"
_CAS_ATTEMPTS = 8


@dataclass(frozen=True)
class SignOff:
    """The outcome of `sign_off`: `complete` means resume now (as `approver`)."""

    complete: bool
    required: int = 1
    approvals: tuple[dict[str, Any], ...] = ()


def rule_of(spec_nodes: Mapping[str, Any], head: Checkpoint) -> ApprovalRule | None:
    """The rule governing a decision on `head` (the interrupted node's), if any."""
    if head.interrupt is None:
        return None
    node = spec_nodes.get(head.interrupt.node)
    rule: ApprovalRule | None = getattr(node, "approval", None)
    return rule


def approvals_key(step: int) -> str:
    return f"{APPROVALS_PREFIX}{step}"


def recorded_approvals(backend: Backend, head: Checkpoint) -> dict[str, Any] | None:
    """The approvals recorded so far toward the decision on suspended `head` (store only)."""
    if head.status != "suspended":
        return None
    record = backend.checkpoints.get_record(head.thread_id, approvals_key(head.step))
    return dict(record.value) if record is not None else None


def requester_names(
    backend: Backend, head: Checkpoint, rule: ApprovalRule, values: Any
) -> set[str]:
    """Who requested: the `requester_field` value, else step 0's actor (lower-cased)."""
    if rule.requester_field is not None:
        value = values.get(rule.requester_field) if isinstance(values, Mapping) else None
        if isinstance(value, str) and value.strip():
            return {value.strip().lower()}
        raise ApprovalRefused(
            f"the requester cannot be told: state field {rule.requester_field!r} is empty, and "
            "the rule forbids the requester to approve",
        )
    first = backend.checkpoints.get_checkpoint(head.thread_id, 0)
    if first is None:
        return set()
    actor = first.actor
    return {actor.id.lower(), f"{actor.kind}:{actor.id}".lower()}


def sign_off(
    backend: Backend,
    rule: ApprovalRule | None,
    head: Checkpoint,
    approver: Approver,
    *,
    decision: str = "approve",
    comment: str = "",
    via: str = "api",
    values: Mapping[str, Any] | None = None,
    clock: Clock | None = None,
) -> SignOff:
    """Check `approver` may make `decision` on suspended `head` under `rule`, and record an
    approval that does not yet complete the rule. Raises `SignInRequired` / `ApprovalRefused`
    (nothing written); returns `SignOff(complete=True)` when the caller should resume now.

    `values`: the state at `head` (needed only for a `requester_field`)."""
    if rule is None:
        return SignOff(complete=True)
    who = approver.actor.id
    if rule.needs_identity and not approver.authenticated:
        raise SignInRequired(
            f"sign in to decide: this step's rule ({summary(rule)}) must know who approves; "
            "decide as a signed-in person (an approval link, or the API's resume route)",
        )
    rejecting = decision in REJECTIONS
    if not rule.requester_may_approve and not rejecting:
        requester = requester_names(backend, head, rule, values or {})
        if approver.names() & requester:
            raise ApprovalRefused(
                f"{who} requested this and may not approve it: another person must",
            )
    if rule.approvals_required == 1 or rejecting:
        return SignOff(complete=True, required=rule.approvals_required)
    return _tally(backend, rule, head, approver, decision, comment, via, clock or SystemClock())


def _tally(
    backend: Backend,
    rule: ApprovalRule,
    head: Checkpoint,
    approver: Approver,
    decision: str,
    comment: str,
    via: str,
    clock: Clock,
) -> SignOff:
    """Add `approver` to the step's approvals (CAS loop); complete once N distinct approved."""
    store = backend.checkpoints
    key = approvals_key(head.step)
    required = rule.approvals_required
    for _ in range(_CAS_ATTEMPTS):
        found = store.get_record(head.thread_id, key)
        approvals = list(found.value.get("approvals", [])) if found is not None else []
        if any(approver.same_person(a) for a in approvals):
            if len(approvals) >= required:  # a retry of the approval that completed the rule
                return SignOff(complete=True, required=required, approvals=tuple(approvals))
            raise ApprovalRefused(
                f"{approver.actor.id} already approved step {head.step} ({len(approvals)} of "
                f"{required}): a different person must approve; the same person counts once",
            )
        if len(approvals) >= required:
            return SignOff(complete=True, required=required, approvals=tuple(approvals))
        entry = {
            "key": approver.key,
            "actor": approver.actor.model_dump(mode="json"),
            "email": approver.email,
            "decision": decision,
            "comment": comment,
            "via": via,
            "at": iso(clock.now()),
        }
        recorded = [*approvals, entry]
        value = {
            "step": head.step,
            "node": head.interrupt.node if head.interrupt else None,
            "required": required,
            "approvals": recorded,
        }
        try:
            # Create iff absent, else CAS on the version read: of two approvers racing, both
            # count, each once (the loser reads the winner's entry and adds its own).
            store.put_record(
                head.thread_id, key, value, expected_version=found.version if found else None
            )
        except RecordConflict:
            continue
        complete = len(recorded) >= required
        return SignOff(complete=complete, required=required, approvals=tuple(recorded))
    raise RecordConflict(f"approvals of {head.thread_id!r} step {head.step} kept changing")


__all__ = [
    "APPROVALS_PREFIX",
    "SignOff",
    "approvals_key",
    "recorded_approvals",
    "requester_names",
    "rule_of",
    "sign_off",
]
