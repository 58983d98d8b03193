"""Approval links: issue one when a thread suspends, read it back, show what it decides.

A link may be bound to a named approver (`ApprovalPolicy.approvers`: one link per name, the name
in the token's `sub`, each sent as `links["approval:<name>"]` of the notification). Deciding with
a link is `approvals.Approvals.decide`.

A link's record lives beside the thread's other small records, keyed by the token's hash:

    issued ──CAS──▶ accepted (decision written; the resume step, by this link's actor, is
       │                      the chain's step + 1: nothing more is written)
       └──────────▶ superseded (the thread moved on without it)

(`applied`, with the resume step, was written by earlier versions; it is still read.)
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from durable_graph.api.approval_policy import ApprovalPolicy
from durable_graph.api.errors import LinkExpired, LinkNotFound, LinkStale
from durable_graph.api.identity import Identity
from durable_graph.api.keys import KeyProvider
from durable_graph.api.models import DecisionView
from durable_graph.api.tokens import Claims, mint, open_token, token_hash
from durable_graph.backend import Backend, LinkGrant
from durable_graph.checkpoint import Checkpoint, VersionedRecord
from durable_graph.clock import Clock, iso
from durable_graph.engine import Engine
from durable_graph.errors import RecordConflict
from durable_graph.payloads import hydrate, loaded
from durable_graph.ports.commit_writes import RecordWrite
from durable_graph.signoff import recorded_approvals, rule_of

log = logging.getLogger("durable_graph.api.approvals")


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


class ApprovalLinks:
    """Issuing and reading a graph's approval links (`Approvals` adds deciding)."""

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
            known = names_of(identity)
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
        record = {**issued_value(claims), "issued_at": iso(now)}
        return token, RecordWrite(f"approval#{token_hash(token)}", record)

    # ------------------------------------------------------------------ reading

    def open(self, token: str) -> Ticket:
        """Signature, then the stored record, then that both agree; else one generic 404."""
        claims = open_token(token, self.keys)
        digest = token_hash(token)
        record = self.backend.checkpoints.get_record(claims.tid, f"approval#{digest}")
        if record is None:
            raise LinkNotFound()
        if not matches(record, claims):
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
        rule = rule_of(spec.nodes, checkpoint, self.backend)
        several = decision is None and rule is not None and rule.approvals_required > 1
        approvals = recorded_approvals(self.backend, checkpoint) if several else None
        return Page(
            ticket=ticket,
            graph=checkpoint.graph.name,
            fields=fields,
            interrupt_payload=(
                loaded(checkpoint.interrupt.payload, self.backend.payloads)
                if checkpoint.interrupt
                else None
            ),
            expires_at=iso(datetime.fromtimestamp(claims.exp, UTC)),
            decision=decision,
            decisions=claims.dec,
            approvals=approvals,
        )

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
            return with_record(ticket, record)
        current = self.backend.checkpoints.get_record(ticket.claims.tid, ticket.key)
        return with_record(ticket, current) if current is not None else ticket

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


def issued_value(claims: Claims) -> dict[str, Any]:
    """What a link's record holds when issued, from its token's claims (one shape for the
    write in `issue` and the rebuilt ticket in `issued`)."""
    return {
        "state": "issued",
        "step": claims.step,
        "node": claims.node,
        "exp": claims.exp,
        "kid": claims.kid,
        "sub": claims.sub,
    }


def issued(claims: Claims, digest: str) -> Ticket:
    """The ticket of a link as `issue` stored it (version 1), rebuilt from its token."""
    record = VersionedRecord(key=f"approval#{digest}", value=issued_value(claims), version=1)
    return Ticket(claims=claims, digest=digest, record=record)


def matches(record: VersionedRecord, claims: Claims) -> bool:
    value = record.value
    return (value.get("step"), value.get("node"), value.get("exp")) == (
        claims.step,
        claims.node,
        claims.exp,
    )


def names_of(identity: Identity | None) -> frozenset[str]:
    """The names a signed-in person answers to, lower-cased (a link's named approver is one)."""
    if identity is None:
        return frozenset()
    names = {identity.key, identity.actor.id, identity.email or ""}
    return frozenset(n.lower() for n in names if n)


def with_record(ticket: Ticket, record: VersionedRecord) -> Ticket:
    return Ticket(claims=ticket.claims, digest=ticket.digest, record=record)


__all__ = ["ApprovalLinks", "Page", "Ticket", "issued", "matches", "names_of", "with_record"]
