"""Who approved, in the hash chain: the `signoff` a resume step commits under an `ApprovalRule`.

While a thread waits for a rule that needs several people, their approvals collect in its
`approvals#<step>` record (`signoff.py`: created, then compare-and-set), beside the chain. The
step that resumes it commits the whole ordered list, with the rule in force, in its hashed
record (`Checkpoint.signoff`, `docs/record-format.md` §15): `verify` and `verify --bundle`
prove every approval, not only the completing approver (the step's actor), and an edit of any
of them is a `hash` failure at that step.

`problems` is the consistency check `verify` runs on such a record (check `signoff`), and
`Engine.resume` on the evidence it is about to commit; `approvals_of` is what `show`, `status`
and the explorer display, with the read path of stores whose resume steps predate the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from durable_graph.approval_rule import REJECTIONS, ApprovalRule
from durable_graph.backend import Backend
from durable_graph.checkpoint import Actor, Approval, Checkpoint, RuleInfo, SignOffRecord

APPROVALS_PREFIX = "approvals#"
# How an approver's identity was established (`Approver.method`): the API's sign-in methods
# (`api/identity.py`), the CLI's operating-system account, a Python caller's own word, or
# nobody's (an approval link's bearer).
UNVERIFIED = "bearer"


def approvals_key(step: int) -> str:
    return f"{APPROVALS_PREFIX}{step}"


def chain_entry(entry: Mapping[str, Any]) -> Approval:
    """An `approvals#` entry as the chain commits it. Its comment stays out: free text hashed
    in the clear could never be erased (`docs/erasure-and-retention.md`)."""
    return Approval(
        actor=Actor.model_validate(entry["actor"]),
        key=str(entry["key"]),
        email=entry.get("email"),
        method=str(entry.get("method", "")),
        via=str(entry.get("via", "")),
        decision=str(entry.get("decision", "approve")),
        at=str(entry["at"]),
        operator=entry.get("operator"),
    )


def evidence(rule: ApprovalRule, entries: Iterable[Mapping[str, Any]]) -> SignOffRecord:
    """The `signoff` of the step that resumes under `rule` after `entries`, in order."""
    return SignOffRecord(
        rule=RuleInfo.model_validate(rule.describe()),
        approvals=[chain_entry(e) for e in entries],
    )


def problems(record: Checkpoint) -> list[str]:
    """What is wrong with a record's `signoff` (empty: sound, or none). It proves the list is
    one the rule in it accepts; not who the requester was (the state may be sealed or erased)."""
    signoff = record.signoff
    if signoff is None:
        return []
    if record.source != "update":
        return [f"a {record.source} step carries approvals: only a decision (update) may"]
    entries = signoff.approvals
    if not entries:
        return ["the signoff lists no approvals"]
    found: list[str] = []
    last = entries[-1]
    if last.actor != record.actor:
        found.append(
            f"the step's actor {record.actor.kind}:{record.actor.id} is not its last approver "
            f"({last.actor.kind}:{last.actor.id})"
        )
    if any(a.decision in REJECTIONS for a in entries[:-1]):
        found.append("a rejection decides at once, so it can only be the last entry")
    keys = [a.key for a in entries]
    emails = [a.email.lower() for a in entries if a.email]
    if len(set(keys)) < len(keys) or len(set(emails)) < len(emails):
        found.append("one person is listed twice: each approver counts once")
    rule = signoff.rule
    approving = [a for a in entries if a.decision not in REJECTIONS]
    if last.decision not in REJECTIONS and len(approving) < rule.approvals_required:
        found.append(
            f"{len(approving)} approval(s), the rule in force needs {rule.approvals_required}"
        )
    needs_identity = (
        rule.approvals_required > 1 or not rule.requester_may_approve or rule.sign_in_required
    )
    if needs_identity and any(a.method == UNVERIFIED for a in entries):
        found.append("an approver nobody authenticated, under a rule that must know who")
    return found


def approvals_of(backend: Backend, record: Checkpoint) -> dict[str, Any] | None:
    """Who decided the step `record` (a resume under a rule), as the reading commands show it:
    `{required, approvals: [...], chained}`. `chained` false: a resume step written before the
    record carried its approvals, whose earlier approvers are only in `approvals#<step - 1>`
    (outside the hash chain; the step's actor, the completing approver, is in it)."""
    if record.signoff is not None:
        return {
            "required": record.signoff.rule.approvals_required,
            "approvals": [a.model_dump(mode="json") for a in record.signoff.approvals],
            "chained": True,
        }
    if record.source != "update" or record.step == 0:
        return None
    stored = backend.checkpoints.get_record(record.thread_id, approvals_key(record.step - 1))
    if stored is None:
        return None
    return {
        "required": int(stored.value.get("required", 1)),
        "approvals": list(stored.value.get("approvals", [])),
        "chained": False,
    }


__all__ = [
    "APPROVALS_PREFIX",
    "UNVERIFIED",
    "approvals_key",
    "approvals_of",
    "chain_entry",
    "evidence",
    "problems",
]
