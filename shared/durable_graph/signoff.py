"""`sign_off`: the one check every decision on a thread suspended under an `ApprovalRule` makes
before it resumes (`approval_rule.py` says what the rules mean and why they live on the node).

Every path that resumes such a thread reaches it through `Engine.resume(decision=Decision(...))`
(`governed` below): an approval link, `POST /threads/{id}/resume`, the CLI's `resume`, and
Python's `resume(..., approver=...)`, `invoke(Command(resume=...))`, `invoke(None)` and
`update_state` (the approver in `config["configurable"]["approver"]`). A governed step resumed
without one is refused (`ApproverRequired`) before anything is written.

Approvals before the last are kept in the thread's `approvals#<step>` record (created, then
compare-and-set), beside the chain like the approval links' records, so the store alone tells
who approved so far. The approval that completes the rule writes nothing there: the resume step
commits the whole ordered list in its hashed record (`approval_record.py`), its one
conditional append deciding between racing completers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from durable_graph.approval_record import approvals_key, evidence
from durable_graph.approval_rule import (
    REJECTIONS,
    ApprovalRefused,
    ApprovalRule,
    Approver,
    SignInRequired,
    summary,
)
from durable_graph.backend import Backend
from durable_graph.checkpoint import Checkpoint, SignOffRecord
from durable_graph.clock import Clock, SystemClock, iso
from durable_graph.errors import InvalidInput, RecordConflict
from durable_graph.operator_keys import enrolment_refusal
from durable_graph.operator_registry import revocations_of
from durable_graph.operator_validity import NO_REVOCATIONS

_CAS_ATTEMPTS = 8


@dataclass(frozen=True)
class SignOff:
    """The outcome of `sign_off`: `complete` means resume now (as `approver`), committing
    `record` (None when no rule governs the step)."""

    complete: bool
    required: int = 1
    approvals: tuple[dict[str, Any], ...] = ()
    record: SignOffRecord | None = None


@dataclass(frozen=True)
class Decision:
    """Who decides a suspended step, for `Engine.resume` (needed where a rule governs it).

    Attributes:
        approver: the person deciding, and how that was established (`Approver.method`).
        decision: `approve` (or `resume`), or one of `REJECTIONS` (a veto decides at once).
        comment: kept in `approvals#<step>` for an approval that does not complete the rule.
        via: the route, for the ledger: `python`, `cli`, `api resume`, `link 3f2a…`.
        signed: `sign_off`'s outcome when the caller ran it already (an approval link runs it
            before its own record's compare-and-set).
    """

    approver: Approver
    decision: str = "approve"
    comment: str = ""
    via: str = "python"
    signed: SignOff | None = None


class ApprovalPending(Exception):
    """Not a failure: the approval was recorded and the rule needs more, so the thread still
    waits at `head`. `Engine.resume` raises it; every caller turns it into its answer (202,
    the suspended head)."""

    def __init__(self, signed: SignOff, head: Checkpoint) -> None:
        super().__init__(f"approved {len(signed.approvals)} of {signed.required}")
        self.signed = signed
        self.head = head


class ApproverRequired(SignInRequired):
    """A governed step resumed without an approver (HTTP 401, CLI exit 2): nothing written."""

    code = "approver_required"


def decision_of(
    approver: Approver | str | None, *, decision: str = "approve", via: str = "python"
) -> Decision | None:
    """A Python or CLI caller's `approver` (an `Approver`, or a name it vouches for) as the
    `Decision` `Engine.resume` takes; None when it names nobody."""
    if approver is None:
        return None
    who = approver if isinstance(approver, Approver) else Approver.named(str(approver))
    return Decision(approver=who, decision=decision, via=via)


def approver_in(config: Mapping[str, Any] | None) -> Approver | str | None:
    """`config["configurable"]["approver"]`: who decides, for `invoke(Command(resume=...))`,
    `invoke(None)` and `update_state` (LangGraph's per-run settings live there too)."""
    configurable = config.get("configurable") if isinstance(config, Mapping) else None
    found = configurable.get("approver") if isinstance(configurable, Mapping) else None
    if found is None or isinstance(found, Approver | str):
        return found
    raise InvalidInput(
        "configurable.approver is an Approver or a person's name (an email, a user name), "
        f"not {type(found).__name__}",
        field="approver",
    )


def rule_of(
    spec_nodes: Mapping[str, Any], head: Checkpoint, backend: Backend | None = None
) -> ApprovalRule | None:
    """The rule governing a decision on `head` (the interrupted node's), if any. A node that
    runs a subgraph waiting inside under a rule is governed by that rule (found through the
    subgraph's thread in `backend`, at any depth): deciding the parent decides the subgraph's
    node, so the parent's resume is checked, tallied and chained under it, and hands its
    approvals down (`subgraph_decision`)."""
    return _governing(spec_nodes, head, backend)[0]


def _governing(
    spec_nodes: Mapping[str, Any], head: Checkpoint, backend: Backend | None
) -> tuple[ApprovalRule | None, Checkpoint]:
    """The rule, and the suspended step whose node it is (`head`, or a subgraph's)."""
    if head.interrupt is None:
        return None, head
    node = spec_nodes.get(head.interrupt.node)
    rule: ApprovalRule | None = getattr(node, "approval", None)
    # A subgraph node (`subgraphs.SubgraphNode.waiting`; duck-typed: that module reads
    # through this one).
    waiting = getattr(getattr(node, "fn", None), "waiting", None)
    task = head.interrupt.task_id
    if rule is not None or backend is None or waiting is None or not task:
        return rule, head
    found = waiting(backend, head.thread_id, task)
    if found is None:
        return None, head
    inner_nodes, inner = found
    return _governing(inner_nodes, inner, backend)


def subgraph_decision(record: SignOffRecord | None) -> Decision | None:
    """The decision a parent's resume step hands to the subgraph it resumes: the approvals
    the parent's step committed (checked there, under the subgraph node's rule), signed
    already, so the subgraph's resume step commits the same list without a second tally."""
    if record is None or not record.approvals:
        return None
    last = record.approvals[-1]
    approver = Approver(key=last.key, actor=last.actor, email=last.email, method=last.method)
    signed = SignOff(complete=True, required=record.rule.approvals_required, record=record)
    return Decision(approver=approver, decision=last.decision, via=last.via, signed=signed)


def refuse_governed(spec_nodes: Mapping[str, Any], origin: Checkpoint, backend: Backend) -> None:
    """A turn from a past suspension under a rule (`update_state` with a past `checkpoint_id`
    and `as_node`) would write the node's decision around the rule: refused (fork from that
    step and resume the fork, which the rule governs)."""
    rule = rule_of(spec_nodes, origin, backend) if origin.status == "suspended" else None
    if rule is not None:
        raise ApprovalRefused(
            f"step {origin.step} waited at {origin.interrupt.node!r} under an approval rule "  # type: ignore[union-attr]
            f"({summary(rule)}): an update as a node from there would decide it around the "
            "rule; fork the thread at that step and resume the fork with an approver",
        )


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


def governed(
    backend: Backend,
    spec_nodes: Mapping[str, Any],
    head: Checkpoint,
    values: Mapping[str, Any],
    decision: Decision | None,
    clock: Clock,
) -> SignOffRecord | None:
    """What the resume of `head` commits about who approved: None where no rule governs it
    (or one that need not know who decides, and no approver was given). Raises the refusals
    of `sign_off`, `ApproverRequired`, or `ApprovalPending` (this approval recorded, more
    needed): each before the resume writes its step."""
    if head.status != "suspended":
        return None
    rule, governs = _governing(spec_nodes, head, backend)
    if rule is None:
        return None
    if governs is not head:  # a subgraph's node: its own fields name its requester
        values = {**values, **governs.values}
    if decision is None:
        if not rule.needs_identity:
            return None
        raise ApproverRequired(
            f"step {head.step} of {head.thread_id!r} waits at {head.interrupt.node!r}"  # type: ignore[union-attr]
            f", whose rule ({summary(rule)}) must know who decides: pass the approver "
            "(Python: resume(..., approver='bob@example.com') or config={'configurable': "
            "{'approver': ...}}; HTTP: sign in or use an approval link; the CLI decides as "
            "your OS account)",
        )
    signed = decision.signed
    if signed is None:
        signed = sign_off(
            backend, rule, head, decision.approver, decision=decision.decision,
            comment=decision.comment, via=decision.via, values=values, clock=clock,
        )  # fmt: skip
    if not signed.complete:
        raise ApprovalPending(signed, head)
    if signed.record is not None and signed.record.rule.model_dump() != rule.describe():
        raise ApprovalRefused(
            f"the approvals given were collected under another rule than {summary(rule)}"
        )
    return signed.record


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
    (nothing written); returns `SignOff(complete=True, record=...)` when the caller should
    resume now, committing `record`.

    `values`: the state at `head` (needed only for a `requester_field`)."""
    if rule is None:
        return SignOff(complete=True)
    who = approver.actor.id
    if rule.needs_identity and not approver.authenticated:
        raise SignInRequired(
            f"sign in to decide: this step's rule ({summary(rule)}) must know who approves; "
            "decide as a signed-in person (an approval link, or the API's resume route)",
        )
    at = iso((clock or SystemClock()).now())
    # An operator's certificate is judged now, against the store's revocations (read only
    # for an operator: other approvers cost no read).
    revoked = (
        revocations_of(backend.checkpoints, backend.signer)
        if approver.operator is not None
        else NO_REVOCATIONS
    )
    refusal = enrolment_refusal(approver, backend.signer, at, revoked)
    if refusal is not None:
        raise ApprovalRefused(refusal)
    rejecting = decision in REJECTIONS
    if not rule.requester_may_approve and not rejecting:
        requester = requester_names(backend, head, rule, values or {})
        if approver.names() & requester:
            raise ApprovalRefused(
                f"{who} requested this and may not approve it: another person must",
            )
    entry = _entry(approver, head, decision, comment, via, at)
    if rule.approvals_required == 1:
        return _complete(rule, [entry])
    return _tally(backend, rule, head, approver, entry)


def _tally(
    backend: Backend,
    rule: ApprovalRule,
    head: Checkpoint,
    approver: Approver,
    entry: dict[str, Any],
) -> SignOff:
    """Add `approver` to the step's approvals (CAS loop) unless it completes the rule (N
    distinct approvals, or a rejection): that one is committed by the resume step alone."""
    store = backend.checkpoints
    key = approvals_key(head.step)
    required = rule.approvals_required
    for _ in range(_CAS_ATTEMPTS):
        found = store.get_record(head.thread_id, key)
        approvals = list(found.value.get("approvals", [])) if found is not None else []
        if any(approver.same_person(a) for a in approvals):
            raise ApprovalRefused(
                f"{approver.actor.id} already approved step {head.step} ({len(approvals)} of "
                f"{required}): a different person must approve; the same person counts once",
            )
        recorded = [*approvals, entry]
        if len(recorded) >= required or entry["decision"] in REJECTIONS:
            return _complete(rule, recorded)
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
        return SignOff(complete=False, required=required, approvals=tuple(recorded))
    raise RecordConflict(f"approvals of {head.thread_id!r} step {head.step} kept changing")


def _entry(
    approver: Approver, head: Checkpoint, decision: str, comment: str, via: str, at: str
) -> dict[str, Any]:
    """One approval as `approvals#<step>` keeps it (the chain keeps it without `comment`); an
    enrolled operator's with their signature over the head it decides (`operator_keys.py`)."""
    entry: dict[str, Any] = {
        "key": approver.key,
        "actor": approver.actor.model_dump(mode="json"),
        "email": approver.email,
        "method": approver.method,
        "decision": decision,
        "comment": comment,
        "via": via,
        "at": at,
    }
    if approver.operator is not None:
        proof = approver.operator.prove(head.thread_id, head.step, head.hash, decision, at)
        entry["operator"] = proof.model_dump(mode="json")
    return entry


def _complete(rule: ApprovalRule, entries: list[dict[str, Any]]) -> SignOff:
    return SignOff(
        complete=True,
        required=rule.approvals_required,
        approvals=tuple(entries),
        record=evidence(rule, entries),
    )


__all__ = [
    "ApprovalPending",
    "ApproverRequired",
    "Decision",
    "SignOff",
    "approvals_key",
    "approver_in",
    "decision_of",
    "governed",
    "recorded_approvals",
    "refuse_governed",
    "requester_names",
    "rule_of",
    "sign_off",
    "subgraph_decision",
]
