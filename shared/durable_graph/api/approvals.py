"""Deciding with an approval link: once, as who signed in, under the node's approval rule.

A decision made by a signed-in person (`decide(..., identity=...)`) is recorded under that
person's identity, and one through a link bound to someone else is refused (403). The
interrupted node's `ApprovalRule` (`durable_graph.approval_rule`) is checked by
`signoff.sign_off` before anything is written: a rule that needs two approvers records the first
and leaves the thread suspended (the link stays usable for the second person); the approval that
completes it resumes. Issuing and reading links is `approval_links.ApprovalLinks`.

Two conditional writes decide who wins. The link record's CAS makes one request per *link* win
(a second request finds the recorded decision). `Engine.resume(expected_step=...)`, the
conditional append of step `head+1`, is the final gate across *everything* that may move the
thread (another link, the API, the CLI): if it loses, nothing was resumed and the caller learns
who won.
"""

from __future__ import annotations

from dataclasses import dataclass

from durable_graph.api.approval_links import (
    ApprovalLinks,
    Ticket,
    issued,
    matches,
    names_of,
    with_record,
)
from durable_graph.api.approvers import approver_of
from durable_graph.api.errors import DecisionConflict, LinkNotFound, LinkStale
from durable_graph.api.identity import Identity
from durable_graph.api.models import DecisionView
from durable_graph.api.tokens import open_token, token_hash
from durable_graph.approval_record import UNVERIFIED
from durable_graph.approval_rule import ApprovalRefused, Approver, SignInRequired
from durable_graph.checkpoint import Actor, Checkpoint, SignOffRecord, Status, VersionedRecord
from durable_graph.clock import iso
from durable_graph.errors import InvalidInput, NotSuspended, RecordConflict, StaleHead
from durable_graph.payloads import hydrate
from durable_graph.signoff import Decision, SignOff, rule_of, sign_off


@dataclass(frozen=True)
class Decided:
    """`pending`: the approval was recorded but the rule needs more (the thread waits)."""

    decision: DecisionView
    thread_status: Status
    replayed: bool
    pending: SignOff | None = None


class Approvals(ApprovalLinks):
    """Approval links (`ApprovalLinks`: issue, read) and deciding with one."""

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
        ticket = issued(claims, token_hash(token))
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
        rule = rule_of(self.engine_for(head.graph.name).spec.nodes, head, self.backend)
        signed = None
        if rule is not None:
            signed = sign_off(
                self.backend, rule, head, approver, decision=decision, comment=comment,
                via=f"link {ticket.digest[:12]}", clock=self.clock,
                values=hydrate(head.values, self.backend.payloads),
            )  # fmt: skip
            if not signed.complete:
                return self._pending(ticket, approver, decision, comment, signed)
        try:
            return self._accept(ticket, decision, comment, head, approver, signed)
        except _Decided as decided:
            current = decided.record
        if current is None or not matches(current, claims):
            raise LinkNotFound()  # never issued (or not this token's record)
        ticket = with_record(ticket, current)
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
        signed: SignOff | None,
    ) -> Decided:
        """`signed`: the rule's approvals, kept with the decision so that a retry after a
        crash resumes with the same list."""
        accepted = {
            **ticket.record.value,
            "state": "accepted",
            "decision": decision,
            "comment": comment,
            "decided_by": approver.actor.id,
            "decided_kind": approver.actor.kind,
            "decided_at": iso(self.clock.now()),
        }
        if signed is not None and signed.record is not None:
            accepted["signoff"] = signed.record.model_dump(mode="json")
        try:
            # CAS on the issued version: of two requests with this link, one records its
            # decision; the other finds it here and loses with the winner's decision.
            record = self.backend.checkpoints.put_record(
                ticket.claims.tid, ticket.key, accepted, expected_version=ticket.record.version
            )
        except RecordConflict as conflict:
            current = conflict.current
            raise _Decided(current if isinstance(current, VersionedRecord) else None) from None
        return self._apply(with_record(ticket, record), replayed=False, head=head)

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
        found = value.get("signoff")
        record = SignOffRecord.model_validate(found) if found is not None else None
        decided = Decision(
            approver=Approver(key=f"{actor.kind}:{actor.id}", actor=actor),
            decision=value["decision"],
            via=f"link {ticket.digest[:12]}",
            signed=SignOff(complete=True, record=record),  # checked before it was accepted
        )
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
                decision=decided,
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
                method=UNVERIFIED,
                aliases=frozenset({ticket.claims.sub}),
            )
        if bound is not None and bound.lower() not in names_of(identity):
            raise ApprovalRefused(
                f"this link is for {bound}; you are signed in as {identity.actor.id}"
            )
        return approver_of(identity)

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


class _Decided(Exception):
    """Internal: the CAS of a decision lost; carries the record that is there (or None)."""

    def __init__(self, record: VersionedRecord | None) -> None:
        super().__init__("the link's record is not the issued one")
        self.record = record


__all__ = ["Approvals", "Decided"]
