"""Approval links: issue one when a thread suspends, show what it decides, decide once.

A link may be bound to a named approver (`ApprovalPolicy.approvers`: one link per name, the name
in the token's `sub`, each sent as `links["approval:<name>"]` of the notification); a decision
made by a signed-in person (`decide(..., identity=...)`) is recorded under that person's
identity, and one through a link bound to someone else is refused (403). The interrupted node's
`ApprovalRule` (`durable_graph.approval_rule`) is checked by `signoff.sign_off` before anything
is written: a rule that needs two approvers records the first and leaves the thread suspended
(the link stays usable for the second person); the approval that completes it resumes.

A link's record lives beside the thread's other small records, keyed by the token's hash:

    issued ──CAS──▶ accepted (decision written; the resume step, by this link's actor, is
       │                      the chain's step + 1: nothing more is written)
       └──────────▶ superseded (the thread moved on without it)

(`applied`, with the resume step, was written by earlier versions; it is still read.)

Two conditional writes decide who wins. The record's CAS makes one request per *link* win (a
second request finds the recorded decision). `Engine.resume(expected_step=...)`, the conditional
append of step `head+1`, is the final gate across *everything* that may move the thread (another
link, the API, the CLI): if it loses, nothing was resumed and the caller learns who won.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from durable_graph.api.errors import DecisionConflict, LinkExpired, LinkNotFound, LinkStale
from durable_graph.api.identity import Identity
from durable_graph.api.keys import KeyProvider
from durable_graph.api.models import DecisionView
from durable_graph.api.tokens import Claims, mint, open_token, token_hash
from durable_graph.approval_rule import ApprovalRefused, Approver, SignInRequired
from durable_graph.backend import Backend, LinkGrant
from durable_graph.checkpoint import Actor, Checkpoint, Status, VersionedRecord
from durable_graph.clock import Clock, iso
from durable_graph.engine import Engine
from durable_graph.errors import InvalidInput, NotSuspended, RecordConflict, StaleHead
from durable_graph.payloads import hydrate
from durable_graph.ports import RecordWrite
from durable_graph.signoff import SignOff, recorded_approvals, rule_of, sign_off

log = logging.getLogger("durable_graph.api.approvals")

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


@dataclass(frozen=True)
class Ticket:
    """A token whose signature held and whose record exists."""

    claims: Claims
    digest: str
    record: VersionedRecord

    @property
    def key(self) -> str:
        return f"approval#{self.digest}"

    @property
    def state(self) -> str:
        return str(self.record.value["state"])

    @property
    def actor_id(self) -> str:
        """Who decides: the link's subject, and which link (the ledger shows both)."""
        return f"{self.claims.sub} via link {self.digest[:12]}"


@dataclass(frozen=True)
class Page:
    """What the approval page shows."""

    ticket: Ticket
    graph: str
    fields: list[tuple[str, Any]]
    interrupt_payload: Any
    expires_at: str
    decision: DecisionView | None = None
    decisions: tuple[str, ...] = field(default=())
    approvals: dict[str, Any] | None = None  # approvals recorded so far (`signoff`)


@dataclass(frozen=True)
class Decided:
    """`pending`: the approval was recorded but the rule needs more (the thread waits)."""

    decision: DecisionView
    thread_status: Status
    replayed: bool
    pending: SignOff | None = None


class Approvals:
    def __init__(
        self,
        backend: Backend,
        keys: KeyProvider,
        *,
        base_url: str,
        clock: Clock,
        policy_for: Callable[[str], ApprovalPolicy | None],
        engine_for: Callable[[str], Engine],
    ) -> None:
        self.backend = backend
        self.keys = keys
        self.base_url = base_url.rstrip("/")
        self.clock = clock
        self.policy_for = policy_for
        self.engine_for = engine_for

    # ------------------------------------------------------------------ issuing

    def grant(self, checkpoint: Checkpoint) -> LinkGrant:
        """The `Backend.approval_links` hook: mint a link for a suspension, its record to be
        written with the suspension's commit (so the link costs no request of its own).

        A failure here must not lose the suspension or its notification, so it is logged and
        the notification goes out without a link. With named approvers, one link each
        (`links["approval:<name>"]`), bound to that name."""
        policy = self.policy_for(checkpoint.graph.name)
        names = policy.approvers if policy is not None else ()
        links: dict[str, str] = {}
        records: list[RecordWrite] = []
        for name in names or (None,):
            try:
                minted = self._mint(checkpoint, approver=name)
            except Exception:
                log.exception("could not mint an approval link for %s", checkpoint.thread_id)
                continue
            if minted is None:
                continue
            token, record = minted
            links[f"approval:{name}" if name else "approval"] = f"{self.base_url}/approvals/{token}"
            records.append(record)
        return LinkGrant(links, tuple(records))

    def links_for(self, checkpoint: Checkpoint) -> dict[str, str]:
        """Mint and store links for a suspended checkpoint now (outside any commit)."""
        grant = self.grant(checkpoint)
        for record in grant.records:
            self.backend.checkpoints.put_record(
                checkpoint.thread_id, record.key, record.value, expected_version=None
            )
        return grant.links

    def link_for(self, checkpoint: Checkpoint, identity: Identity | None) -> str | None:
        """A fresh link for a signed-in person (the explorer's button): bound to them when
        the policy names approvers (None if they are not one of them)."""
        policy = self.policy_for(checkpoint.graph.name)
        name = None
        if policy is not None and policy.approvers:
            known = _names_of(identity)
            name = next((n for n in policy.approvers if n.lower() in known), None)
            if name is None:
                return None
        token = self.issue(checkpoint, approver=name)
        return f"{self.base_url}/approvals/{token}" if token else None

    def issue(self, checkpoint: Checkpoint, *, approver: str | None = None) -> str | None:
        """Mint a token for this suspended checkpoint and store its hash (never the token);
        `approver`: the named approver it is bound to (its `sub`)."""
        minted = self._mint(checkpoint, approver=approver)
        if minted is None:
            return None
        token, record = minted
        self.backend.checkpoints.put_record(
            checkpoint.thread_id, record.key, record.value, expected_version=None
        )
        return token

    def _mint(
        self, checkpoint: Checkpoint, *, approver: str | None = None
    ) -> tuple[str, RecordWrite] | None:
        """A token for this suspended checkpoint, and its record (keyed by the token's hash,
        created iff absent), not yet written."""
        policy = self.policy_for(checkpoint.graph.name)
        if policy is None or checkpoint.interrupt is None or checkpoint.status != "suspended":
            return None
        now = self.clock.now()
        token, claims = mint(
            self.keys,
            thread_id=checkpoint.thread_id,
            step=checkpoint.step,
            node=checkpoint.interrupt.node,
            decisions=policy.decisions,
            expires_at=int(now.timestamp()) + policy.ttl_seconds,
            subject=approver or policy.subject,
        )
        record = {**_issued_value(claims), "issued_at": iso(now)}
        return token, RecordWrite(f"approval#{token_hash(token)}", record)

    # ------------------------------------------------------------------ reading

    def open(self, token: str) -> Ticket:
        """Signature, then the stored record, then that both agree; else one generic 404."""
        claims = open_token(token, self.keys)
        digest = token_hash(token)
        record = self.backend.checkpoints.get_record(claims.tid, f"approval#{digest}")
        if record is None:
            raise LinkNotFound()
        if not _matches(record, claims):
            raise LinkNotFound()
        return Ticket(claims=claims, digest=digest, record=record)

    def page(self, token: str) -> Page:
        """Everything the GET page shows. Reads only: mail scanners prefetch links."""
        ticket = self.open(token)
        claims = ticket.claims
        head = self.backend.checkpoints.head_checkpoint(claims.tid)
        checkpoint = self._checkpoint(claims, head)
        policy = self._policy(checkpoint)
        decision = None
        if ticket.state in ("accepted", "applied"):
            decision = self._view_of_record(ticket)
        else:
            self._check_open(ticket, head)
        values = hydrate(checkpoint.values, self.backend.payloads)
        # The state model's field order (recipient, subject, draft...), not the stored order.
        spec = self.engine_for(checkpoint.graph.name).spec
        declared = spec.schema.fields
        names = policy.show or (*declared, *(n for n in values if n not in declared))
        fields = [(n, values[n]) for n in names if n in values and values[n] not in (None, "", [])]
        # Who approved so far: only a rule that needs several approvers has a record to read.
        rule = rule_of(spec.nodes, checkpoint)
        several = decision is None and rule is not None and rule.approvals_required > 1
        approvals = recorded_approvals(self.backend, checkpoint) if several else None
        return Page(
            ticket=ticket,
            graph=checkpoint.graph.name,
            fields=fields,
            interrupt_payload=checkpoint.interrupt.payload if checkpoint.interrupt else None,
            expires_at=iso(datetime.fromtimestamp(claims.exp, UTC)),
            decision=decision,
            decisions=claims.dec,
            approvals=approvals,
        )

    # ------------------------------------------------------------------ deciding

    def decide(
        self, token: str, decision: str, comment: str, identity: Identity | None = None
    ) -> Decided:
        """Record the link's decision (one CAS on the issued record, read by nobody first: its
        lost condition returns what is there) and resume the thread with it, as `identity`
        when someone signed in. Every refusal (bad decision, wrong person, the node's approval
        rule not met) is raised before anything is written; an approval that does not yet
        complete the rule is recorded (`signoff`) and the link stays issued."""
        claims = open_token(token, self.keys)
        head = self.backend.checkpoints.head_checkpoint(claims.tid)
        ticket = _issued(claims, token_hash(token))
        if not self._still_open(claims, head):
            # Expired, stale, or decided before: the stored record says which.
            ticket = self.open(token)
            if ticket.state in ("accepted", "applied"):
                return self._replay(ticket, decision)
            self._check_open(ticket, head)
        if decision not in claims.dec:
            raise InvalidInput(f"decision must be one of {', '.join(claims.dec)}", field="decision")
        assert head is not None  # _still_open / _check_open refused a missing head
        approver = self._approver(ticket, head, identity)
        rule = rule_of(self.engine_for(head.graph.name).spec.nodes, head)
        if rule is not None:
            signed = sign_off(
                self.backend, rule, head, approver, decision=decision, comment=comment,
                via=f"link {ticket.digest[:12]}", clock=self.clock,
                values=hydrate(head.values, self.backend.payloads),
            )  # fmt: skip
            if not signed.complete:
                return self._pending(ticket, approver, decision, comment, signed)
        try:
            return self._accept(ticket, decision, comment, head, approver)
        except _Decided as decided:
            current = decided.record
        if current is None or not _matches(current, claims):
            raise LinkNotFound()  # never issued (or not this token's record)
        ticket = _with(ticket, current)
        if ticket.state in ("accepted", "applied"):
            return self._replay(ticket, decision)
        raise LinkStale()

    def _accept(
        self,
        ticket: Ticket,
        decision: str,
        comment: str,
        head: Checkpoint | None,
        approver: Approver,
    ) -> Decided:
        accepted = {
            **ticket.record.value,
            "state": "accepted",
            "decision": decision,
            "comment": comment,
            "decided_by": approver.actor.id,
            "decided_kind": approver.actor.kind,
            "decided_at": iso(self.clock.now()),
        }
        try:
            # CAS on the issued version: of two requests with this link, one records its
            # decision; the other finds it here and loses with the winner's decision.
            record = self.backend.checkpoints.put_record(
                ticket.claims.tid, ticket.key, accepted, expected_version=ticket.record.version
            )
        except RecordConflict as conflict:
            current = conflict.current
            raise _Decided(current if isinstance(current, VersionedRecord) else None) from None
        return self._apply(_with(ticket, record), replayed=False, head=head)

    def _apply(self, ticket: Ticket, *, replayed: bool, head: Checkpoint | None = None) -> Decided:
        """Resume the thread with the recorded decision; the checkpoint append is the gate.

        `head`: the head the caller read (then no second read): if the thread moved since, the
        conditional append loses and the winner is read, as for any race."""
        claims = ticket.claims
        value = ticket.record.value
        checkpoint = self._checkpoint(claims, head)
        policy = self._policy(checkpoint)
        update = policy.values_for(value["decision"], value["comment"])
        actor = Actor(kind=value.get("decided_kind", "human"), id=value["decided_by"])
        during = checkpoint.interrupt is not None and checkpoint.interrupt.when == "during"
        engine = self.engine_for(checkpoint.graph.name)
        try:
            resumed = engine.resume(
                claims.tid,
                values=None if during else update,
                as_node=None if during else claims.node,
                resume_value=update if during else None,
                has_resume_value=during,
                expected_step=claims.step,
                actor=actor,
                head=checkpoint,
            )
        except (StaleHead, NotSuspended) as lost:
            winner = self.backend.checkpoints.get_checkpoint(claims.tid, claims.step + 1)
            if winner is not None and winner.actor == actor:
                resumed = winner  # our own earlier attempt landed (a retry after a crash)
            else:
                self._set(ticket, {"state": "superseded"})
                if winner is None:
                    raise LinkStale() from lost
                raise DecisionConflict(
                    "the thread was decided by someone else first",
                    detail={"decision": self._view_of_checkpoint(claims, winner).model_dump()},
                ) from lost
        # The record stays `accepted`: the step it applied is the chain's (step + 1, written by
        # this link's actor), so a second write would only repeat it.
        view = self._view_of_record(ticket).model_copy(update={"applied_step": resumed.step})
        # The status the decision left the thread in (a worker may move it on from there).
        return Decided(decision=view, thread_status=resumed.status, replayed=replayed)

    def _replay(self, ticket: Ticket, decision: str) -> Decided:
        """The link already decided: the same decision gets the recorded outcome (finishing
        the resume if a crash interrupted it); a different one gets 409 with the winner."""
        recorded = ticket.record.value.get("decision")
        if decision != recorded:
            raise DecisionConflict(
                f"this link already decided: {recorded}",
                detail={"decision": self._view_of_record(ticket).model_dump()},
            )
        claims = ticket.claims
        head = self.backend.checkpoints.head_checkpoint(claims.tid)
        view = self._view_of_record(ticket)
        if view.applied_step is None:  # `accepted`: did this link's resume land?
            if head is None or head.step <= claims.step:
                return self._apply(ticket, replayed=True, head=head)  # a crash stopped it
            resumed = self.backend.checkpoints.get_checkpoint(claims.tid, claims.step + 1)
            if resumed is None or resumed.actor.id != ticket.record.value.get("decided_by"):
                return self._apply(ticket, replayed=True)  # someone else moved the thread
            view = view.model_copy(update={"applied_step": resumed.step})
        return Decided(
            decision=view,
            thread_status=head.status if head else "completed",
            replayed=True,
        )

    def _approver(self, ticket: Ticket, head: Checkpoint, identity: Identity | None) -> Approver:
        """Who decides: the signed-in person (who must be the link's named approver, if it
        has one), else the link's bearer, known only by the link's subject."""
        policy = self._policy(head)
        bound = ticket.claims.sub if ticket.claims.sub in policy.approvers else None
        if identity is None:
            if policy.require_sign_in:
                raise SignInRequired("sign in to decide: this deployment records who approves")
            email = ticket.claims.sub if "@" in ticket.claims.sub else None
            return Approver(
                key=f"link:{ticket.claims.sub}",
                actor=Actor(kind="human", id=ticket.actor_id),
                email=email,
                authenticated=False,
                aliases=frozenset({ticket.claims.sub}),
            )
        if bound is not None and bound.lower() not in _names_of(identity):
            raise ApprovalRefused(
                f"this link is for {bound}; you are signed in as {identity.actor.id}"
            )
        return Approver(key=identity.key, actor=identity.actor, email=identity.email)

    def _pending(
        self, ticket: Ticket, approver: Approver, decision: str, comment: str, signed: SignOff
    ) -> Decided:
        """An approval recorded toward a rule that needs more: the link stays issued."""
        view = DecisionView(
            thread_id=ticket.claims.tid,
            step=ticket.claims.step,
            node=ticket.claims.node,
            decision=decision,
            comment=comment,
            decided_by=approver.actor.id,
            decided_at=str(signed.approvals[-1]["at"]) if signed.approvals else "",
            applied_step=None,
        )
        return Decided(decision=view, thread_status="suspended", replayed=False, pending=signed)

    # ------------------------------------------------------------------ helpers

    def _still_open(self, claims: Claims, head: Checkpoint | None) -> bool:
        """The link may decide as far as the token and the head say (its record may still
        say otherwise: superseded, or decided)."""
        return (
            self.clock.now().timestamp() < claims.exp
            and head is not None
            and head.step == claims.step
            and head.status == "suspended"
        )

    def _check_open(self, ticket: Ticket, head: Checkpoint | None) -> None:
        """An issued link may decide only unexpired and while its step is the suspended head
        (`head`: the thread's head, just read)."""
        claims = ticket.claims
        if ticket.state == "superseded":
            raise LinkStale()
        if self.clock.now().timestamp() >= claims.exp:
            raise LinkExpired()
        if head is None:
            raise LinkNotFound()
        if head.step != claims.step or head.status != "suspended":
            raise LinkStale(f" (it is {head.status} at step {head.step})")

    def _checkpoint(self, claims: Claims, head: Checkpoint | None = None) -> Checkpoint:
        """The link's step: the head just read when it is that step (no read), else read."""
        if head is not None and head.step == claims.step:
            return head
        checkpoint = self.backend.checkpoints.get_checkpoint(claims.tid, claims.step)
        if checkpoint is None:
            raise LinkNotFound()
        return checkpoint

    def _policy(self, checkpoint: Checkpoint) -> ApprovalPolicy:
        policy = self.policy_for(checkpoint.graph.name)
        if policy is None:
            raise LinkNotFound()
        return policy

    def _set(self, ticket: Ticket, changes: dict[str, Any]) -> Ticket:
        """Advance the link's record; a concurrent writer of the same outcome may win."""
        value = {**ticket.record.value, **changes}
        with contextlib.suppress(RecordConflict):
            record = self.backend.checkpoints.put_record(
                ticket.claims.tid, ticket.key, value, expected_version=ticket.record.version
            )
            return _with(ticket, record)
        current = self.backend.checkpoints.get_record(ticket.claims.tid, ticket.key)
        return _with(ticket, current) if current is not None else ticket

    def _view_of_record(self, ticket: Ticket) -> DecisionView:
        value = ticket.record.value
        return DecisionView(
            thread_id=ticket.claims.tid,
            step=ticket.claims.step,
            node=ticket.claims.node,
            decision=value.get("decision"),
            comment=value.get("comment", ""),
            decided_by=value.get("decided_by", ""),
            decided_at=value.get("decided_at", ""),
            applied_step=value.get("applied_step"),
        )

    def _view_of_checkpoint(self, claims: Claims, winner: Checkpoint) -> DecisionView:
        """What moved the thread, when it was not this link (another link, the API, the CLI)."""
        values = hydrate(winner.values, self.backend.payloads)
        policy = self.policy_for(winner.graph.name) or ApprovalPolicy()
        return DecisionView(
            thread_id=claims.tid,
            step=claims.step,
            node=claims.node,
            decision=policy.decision_of(values),
            comment="",
            decided_by=f"{winner.actor.kind}:{winner.actor.id}",
            decided_at=winner.created_at,
            applied_step=winner.step,
        )


class _Decided(Exception):
    """Internal: the CAS of a decision lost; carries the record that is there (or None)."""

    def __init__(self, record: VersionedRecord | None) -> None:
        super().__init__("the link's record is not the issued one")
        self.record = record


def _issued_value(claims: Claims) -> dict[str, Any]:
    """What a link's record holds when issued, from its token's claims (one shape for the
    write in `issue` and the rebuilt ticket in `_issued`)."""
    return {
        "state": "issued",
        "step": claims.step,
        "node": claims.node,
        "exp": claims.exp,
        "kid": claims.kid,
        "sub": claims.sub,
    }


def _issued(claims: Claims, digest: str) -> Ticket:
    """The ticket of a link as `issue` stored it (version 1), rebuilt from its token."""
    record = VersionedRecord(key=f"approval#{digest}", value=_issued_value(claims), version=1)
    return Ticket(claims=claims, digest=digest, record=record)


def _matches(record: VersionedRecord, claims: Claims) -> bool:
    value = record.value
    return (value.get("step"), value.get("node"), value.get("exp")) == (
        claims.step,
        claims.node,
        claims.exp,
    )


def _names_of(identity: Identity | None) -> frozenset[str]:
    """The names a signed-in person answers to, lower-cased (a link's named approver is one)."""
    if identity is None:
        return frozenset()
    names = {identity.key, identity.actor.id, identity.email or ""}
    return frozenset(n.lower() for n in names if n)


def _with(ticket: Ticket, record: VersionedRecord) -> Ticket:
    return Ticket(claims=ticket.claims, digest=ticket.digest, record=record)
