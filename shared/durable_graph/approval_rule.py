"""Segregation of duties on a human decision: who may approve an interrupted node, and how many.

A node declares its rule where it is added, beside its retry policy::

    builder.add_node(
        "release_payment",
        release_payment,
        approval=ApprovalRule(approvals_required=2, requester_may_approve=False,
                              requester_field="requested_by"),
    )

and the rule governs every decision on a thread suspended at that node: before it
(`interrupt_before`), after it (`interrupt_after`) or inside it (`interrupt(value)`).

Why on the node, not `interrupt(value, policy=...)`: a static `interrupt_before` (the seed's
`human_review`) has no call site to pass a policy to; a rule fixed in the graph is known before
the node runs, is covered by the graph's version hash (each record names the version it ran
under, so the ledger commits to the rule in force), and needs no record-format change; and node
code cannot loosen a control at run time. A step that needs a stricter rule for some inputs (two
approvers above a threshold) routes those inputs to a node of its own with that rule.

`sign_off` is the one check every decision path makes before it resumes a thread (approval links,
`POST /threads/{id}/resume`, the CLI's `resume`, Python's `resume`/`invoke`/`update_state`, all
through `Engine.resume`); it raises before anything is written:

- `requester_may_approve=False`: the requester (the state field `requester_field`, else the
  actor who started the thread) may not approve: `ApprovalRefused` (HTTP 403, CLI exit 2).
- `approvals_required=N`: N *distinct* approvers (by identity key, and by email when both have
  one). Each approval before the last is recorded in the thread's `approvals#<step>` record
  (created, then compare-and-set: two approvers racing both count, once each) and the thread
  stays suspended; the same person approving again is refused and counts once. The approval
  that completes the rule resumes the thread, whose resume step names that approver as its
  actor and commits everyone's approvals. A rejection (any decision in `REJECTIONS`) by an eligible
  approver decides at once: one veto stops a payment.
- A rule that needs to know who decides (more than one approver, the requester excluded, or
  `sign_in_required`) refuses a decision whose identity nobody authenticated (an unbound link
  without sign-in): `SignInRequired` (HTTP 401), and a resume that names no approver at all
  (Python without `approver=`): `ApproverRequired` (`signoff.py`).
- The resume step commits the whole ordered list of approvals, with the rule, in its hashed
  record (`approval_record.py`): `verify` proves who approved, not only who completed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from durable_graph.checkpoint import Actor
from durable_graph.errors import InvalidInput, UserError
from durable_graph.operator_proof import OperatorCertificate, OperatorProof

REJECTIONS = frozenset({"reject"})
MAX_APPROVALS = 10


class ApprovalRefused(UserError):
    """This person may not make this decision (HTTP 403): changes nothing stored."""

    code = "approval_refused"


class SignInRequired(UserError):
    """The decision needs an authenticated approver (HTTP 401): changes nothing stored."""

    code = "sign_in_required"


@dataclass(frozen=True)
class ApprovalRule:
    """Who may decide a node's interrupt, and how many must approve.

    Attributes:
        approvals_required: distinct approvers needed before the thread resumes (1..10).
        requester_may_approve: False: the requester may not approve their own request.
        requester_field: the state field naming the requester (an email, a user id); default:
            the actor who started the thread (step 0).
        sign_in_required: decisions need an authenticated person even for one approver.
    """

    approvals_required: int = 1
    requester_may_approve: bool = True
    requester_field: str | None = None
    sign_in_required: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.approvals_required <= MAX_APPROVALS:
            raise InvalidInput(
                f"approvals_required must be 1..{MAX_APPROVALS}, not {self.approvals_required}",
                field="approvals_required",
            )
        if self.requester_field is not None and not self.requester_field.strip():
            raise InvalidInput("requester_field, when given, names a field", field="approval")

    @property
    def needs_identity(self) -> bool:
        return (
            self.approvals_required > 1 or not self.requester_may_approve or self.sign_in_required
        )

    def describe(self) -> dict[str, Any]:
        """What the graph's version hash covers."""
        return {
            "approvals_required": self.approvals_required,
            "requester_may_approve": self.requester_may_approve,
            "requester_field": self.requester_field,
            "sign_in_required": self.sign_in_required,
        }


class OperatorSigner(Protocol):
    """An enrolled operator's key (`operator_keys.OperatorKey`): its certificate, and the
    signature it makes over one approval (`sign_off` asks for it as it records the approval)."""

    @property
    def certificate(self) -> OperatorCertificate: ...

    def prove(
        self, thread_id: str, step: int, head_hash: str, decision: str, at: str
    ) -> OperatorProof: ...


@dataclass(frozen=True)
class Approver:
    """Who is deciding.

    Attributes:
        key: stable identity (method, issuer, subject): two approvals with one key are one
            person.
        actor: what the ledger records as the resume step's actor.
        email: a verified email, when the identity has one (also a name the requester or a
            link's named approver may be given as).
        method: how the identity was established, as the ledger records it: the API's
            sign-in method (`oidc`, `session`, `api_key`, `iam`), `os_user` (the CLI: the
            process's operating-system account), `operator_key` (an operator enrolled by the
            ledger key, who signs the approval: `operator_keys.py`), `caller` (Python code that
            holds the store's credentials says who), or `bearer` (an approval link's holder:
            nobody verified it).
        aliases: further names the approver answers to (a link's named approver, an OS login).
        operator: the enrolled operator's key, which signs the approval (`operator_key`).
    """

    key: str
    actor: Actor
    email: str | None = None
    method: str = "caller"
    aliases: frozenset[str] = field(default_factory=frozenset)
    operator: OperatorSigner | None = None

    @property
    def authenticated(self) -> bool:
        """False for an identity nobody verified (a link's bearer)."""
        return self.method != "bearer"

    @classmethod
    def named(cls, name: str) -> Approver:
        """A person a Python caller names (`resume(..., approver="bob@example.com")`): the
        caller vouches for it (`method="caller"`), as it could write the store directly."""
        person = name.strip()
        if not person:
            raise InvalidInput("approver names a person (an email or user name)", field="approver")
        return cls(
            key=f"caller:{person.lower()}",
            actor=Actor(kind="human", id=person),
            email=person if "@" in person else None,
        )

    def names(self) -> frozenset[str]:
        """Every name this approver answers to, lower-cased (requester and link matching)."""
        found = {self.key, self.actor.id, f"{self.actor.kind}:{self.actor.id}", *self.aliases}
        if self.email:
            found.add(self.email)
        return frozenset(n.strip().lower() for n in found if n and n.strip())

    def same_person(self, entry: Mapping[str, Any]) -> bool:
        """Whether a recorded approval (`approvals#` entry) is this approver's."""
        if entry.get("key") == self.key:
            return True
        email = entry.get("email")
        return bool(email and self.email and email.lower() == self.email.lower())


def summary(rule: ApprovalRule) -> str:
    """The rule in words, for refusals and pages."""
    parts = []
    if rule.approvals_required > 1:
        parts.append(f"approvals_required={rule.approvals_required}")
    if not rule.requester_may_approve:
        parts.append("requester may not approve")
    if rule.sign_in_required:
        parts.append("sign-in required")
    return ", ".join(parts) or "one approver"


__all__ = [
    "REJECTIONS",
    "ApprovalRefused",
    "ApprovalRule",
    "Approver",
    "OperatorSigner",
    "SignInRequired",
    "summary",
]
