"""Verifying a thread's ledger, from records alone (store or bundle alike).

Checks, each named in the report with the first step where it fails:

- `hash`: every record's content matches its hash (RFC 8785 canonical JSON, sha256);
- `link`: every `prev_hash` (and `parent`) names the previous record's hash;
- `contiguity`: steps run 0, 1, 2... with none missing, repeated or reordered;
- `payload`: every payload a record refers to is present and matches its digest;
- `state`: (format 2) every change's chunk matches its digest, and the field digests folded
  from step 0 give each record's state root, so the records prove the full state at every
  step (`docs/record-format.md`); a record whose state was erased is still proven by digest;
- `erasure`: a value that is gone (a change with no salt, value or chunk) and a payload that is
  missing are named by a signed erasure record (`erasure_record.py`), and those records link
  up and carry trusted signatures; the report lists the erased fields per step;
- `transition`: legal status transitions: step 0 is an input or a fork (and only step 0 a
  fork); a decision (`update`) only right after a suspension or a failure, so one decision per
  interrupt; node steps only from a running step; after a completed step only new input (a
  thread's next turn); new input never right after a running step;
- `origin`: a fork's step 0 links to the record it was forked from;
- `signoff`: a decision under an approval rule lists distinct approvers, as many as the rule
  in it needs (or a veto last), with the step's actor last (`approval_record.py`); the list
  is hashed with the record, so the report names who approved each such step; an enrolled
  operator's approval carries a certificate by a trusted ledger key and the operator's
  signature over the head the step decides (`operator_keys.proof_problems`), by a
  certificate not expired or revoked at the approval's time (`operator_validity.py`);
- `signature`: every stored head signature is by a trusted key, matches its content, and names
  a record that is still there with the signed hash; a suspended, completed or failed head is
  signed; the newest signature's step count catches a truncated tail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from durable_graph.approval_record import problems as signoff_problems
from durable_graph.canonical import ZERO_HASH, sha256_hex
from durable_graph.changes import advance_all, chunk_bytes, state_root
from durable_graph.checkpoint import Checkpoint, PayloadRef
from durable_graph.encryption import ThreadCipher, is_sealed
from durable_graph.erasure_parts import erased_part_names
from durable_graph.erasure_record import check_erasures, parse_erasures
from durable_graph.errors import PayloadCorrupted
from durable_graph.operator_keys import proof_problems
from durable_graph.operator_validity import check_revocations
from durable_graph.payloads import collect_refs, is_ref
from durable_graph.ports import PayloadStore
from durable_graph.sealed_checks import KeyStateName, SealedChecks
from durable_graph.signing import (
    SIGNED_STATUSES,
    HeadSignature,
    PublicKey,
    decode_signature,
    parse_signature,
    verify_signature,
)

CHECKS = (
    "parse",
    "thread",
    "contiguity",
    "link",
    "hash",
    "state",
    "payload",
    "erasure",
    "transition",
    "origin",
    "signoff",
)
CHECKS_WITH_SIGNATURES = (*CHECKS, "signature")


@dataclass
class VerifyReport:
    thread_id: str
    ok: bool
    checked: int
    first_bad_step: int | None = None
    check: str | None = None
    reason: str | None = None
    problems: list[dict[str, object]] = field(default_factory=list)
    signed_steps: list[int] = field(default_factory=list)
    key_ids: list[str] = field(default_factory=list)
    checks: tuple[str, ...] = CHECKS
    notes: list[str] = field(default_factory=list)
    # step -> fields whose values were erased there; and each erasure record, summarised
    erased: dict[int, list[str]] = field(default_factory=dict)
    erasures: list[dict[str, object]] = field(default_factory=list)
    # step -> who approved the decision written there, in order (`Checkpoint.signoff`)
    approved: dict[int, list[str]] = field(default_factory=dict)

    def first_by_check(self) -> dict[str, int]:
        """For each check that failed, the first step where it did."""
        first: dict[str, int] = {}
        for problem in self.problems:
            first.setdefault(str(problem["check"]), int(str(problem["step"])))
        return first

    def as_json(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "ok": self.ok,
            "thread_id": self.thread_id,
            "checked": self.checked,
            "checks": list(self.checks),
            "signed_steps": self.signed_steps,
            "key_ids": self.key_ids,
        }
        if self.notes:
            doc["notes"] = self.notes
        if self.erased or self.erasures:
            doc["erased"] = {str(step): fields for step, fields in sorted(self.erased.items())}
            doc["erasures"] = self.erasures
        if self.approved:
            doc["approved"] = {str(step): who for step, who in sorted(self.approved.items())}
        if not self.ok:
            doc.update(
                {
                    "first_bad_step": self.first_bad_step,
                    "check": self.check,
                    "reason": self.reason,
                    "first_by_check": self.first_by_check(),
                    "problems": self.problems,
                }
            )
        return doc


@dataclass
class LedgerEvidence:
    """What besides the records a verifier may have; everything optional."""

    signatures: Sequence[HeadSignature | dict[str, Any]] | None = None
    trusted_keys: Mapping[str, PublicKey] | None = None
    origin: Checkpoint | None = None
    expected_head: int | None = None
    complete: bool = True  # False when records past the last one given could not be read
    notes: list[str] = field(default_factory=list)
    # The thread's erasure records as stored (`erasure_record.py`). None: not known (erased
    # changes then pass unexplained, as before erasure existed); a list: every erased change
    # and every missing `$payload` must be named by one of them.
    erasures: Sequence[Mapping[str, Any]] | None = None
    # A fork's origin thread's erasure records: the origin record's hash may be attested there.
    origin_erasures: Sequence[Mapping[str, Any]] | None = None
    # Encryption at rest (`sealed_checks.py`): the thread's data key, when this verifier may
    # open it, and what the store holds of it (None: not known, as in a bundle).
    cipher: ThreadCipher | None = None
    key_state: KeyStateName | None = None
    # The ledger key's signed revocations of operator certificates (`operator_registry.py`),
    # as stored. None: not known (an operator approval's expiry is still checked).
    revocations: Sequence[Mapping[str, Any]] | None = None


def verify_chain(
    thread_id: str,
    records: Sequence[Checkpoint],
    payloads: PayloadStore | None,
    evidence: LedgerEvidence | None = None,
) -> VerifyReport:
    """`records` oldest first. Checks each record; collects every problem, names the first."""
    evidence = evidence or LedgerEvidence()
    problems: list[dict[str, object]] = []

    def bad(step: int, check: str, reason: str) -> None:
        problems.append({"step": step, "check": check, "reason": reason})

    previous: Checkpoint | None = None
    digests: dict[str, str] = {}
    chunks_ok: set[str] = set()  # chunks already read whole: a keep by reference reads none
    erasures = _Erasures(thread_id, records, evidence, bad)
    sealed = SealedChecks(evidence.cipher, evidence.key_state, erasures.covers, erasures.erased)
    approved: dict[int, list[str]] = {}
    revoked = check_revocations(evidence.revocations or [], evidence.trusted_keys)
    for index, stored in enumerate(records):
        record = stored.with_io_restored()
        if record.thread_id != thread_id:
            bad(record.step, "thread", f"record belongs to thread {record.thread_id!r}")
        if record.step != index:
            bad(index, "contiguity", f"expected step {index}, found step {record.step}")
        _check_link(record, previous, bad)
        if not erasures.hash_ok(record):
            bad(record.step, "hash", "record content does not match its hash")
        if record.format >= 2:
            # The fold starts at step 0, or where format 2 takes over (a record setting all).
            fresh = previous is None or previous.format < 2 or record.step == 0
            digests = _check_state(
                record, {} if fresh else digests, payloads, bad, chunks_ok, erasures, sealed
            )
            sealed.io(record, payloads, bad)
            for part in erased_part_names(stored, payloads):
                erasures.erased(record.step, part)
        if payloads is not None:
            _check_payloads(record, payloads, bad, erasures)
        _check_transition(record, previous, bad)
        for problem in signoff_problems(record) + proof_problems(
            record, evidence.trusted_keys, revoked
        ):
            bad(record.step, "signoff", problem)
        if record.signoff is not None:
            approved[record.step] = [
                f"{a.actor.kind}:{a.actor.id}" for a in record.signoff.approvals
            ]
        if record.step == 0 and record.source == "fork":
            _check_origin(record, evidence, bad)
        previous = record
    if not records:
        bad(0, "contiguity", "thread has no records")
    elif evidence.expected_head is not None and evidence.expected_head > records[-1].step:
        bad(
            len(records),
            "contiguity",
            f"the thread record says the head is step {evidence.expected_head}, "
            f"the chain ends at step {records[-1].step}: the tail is missing",
        )
    signed: list[int] = []
    key_ids: list[str] = []
    checks: tuple[str, ...] = CHECKS
    if evidence.trusted_keys is not None:
        checks = CHECKS_WITH_SIGNATURES
        signed, key_ids = _check_signatures(thread_id, records, evidence, bad)
    problems.sort(key=lambda p: int(str(p["step"])))
    report = VerifyReport(
        thread_id,
        ok=not problems,
        checked=len(records),
        problems=problems,
        signed_steps=signed,
        key_ids=key_ids,
        checks=checks,
        notes=[*evidence.notes, *filter(None, [sealed.note()])],
        erased={step: sorted(names) for step, names in erasures.found.items()},
        erasures=[r.summary() for r in erasures.records],
        approved=approved,
    )
    if problems:
        first = problems[0]
        report.first_bad_step = int(str(first["step"]))
        report.check = str(first["check"])
        report.reason = f"step {first['step']}: {first['check']}: {first['reason']}"
    return report


def _check_link(record: Checkpoint, previous: Checkpoint | None, bad: Any) -> None:
    if record.step == 0 or previous is None:
        if record.source == "fork" and record.parent is not None:
            if record.prev_hash != record.parent.hash:
                bad(record.step, "link", "a fork's prev_hash must be its origin's hash")
        elif record.prev_hash != ZERO_HASH or record.parent is not None:
            bad(record.step, "link", "step 0 must have no parent and an all-zero prev_hash")
        return
    if record.prev_hash != previous.hash:
        bad(record.step, "link", "prev_hash does not match the previous record's hash")
    elif record.parent is not None and (
        record.parent.thread_id != record.thread_id
        or record.parent.step != previous.step
        or record.parent.hash != previous.hash
    ):
        bad(record.step, "link", "parent does not name the previous record")


def _check_state(
    record: Checkpoint,
    digests: dict[str, str],
    payloads: PayloadStore | None,
    bad: Any,
    chunks_ok: set[str],
    erasures: _Erasures,
    sealed: SealedChecks,
) -> dict[str, str]:
    """Chunks against their digests, then the state root; returns the field digests after."""
    for name, change in record.changes.items():
        if change.op == "del":
            continue
        if change.e is not None or (change.ref is not None and is_sealed(change.ref)):
            if change.ref is not None and payloads is not None and change.d not in chunks_ok:
                try:
                    payloads.get(change.ref)  # the sealed bytes against their address
                except PayloadCorrupted as exc:
                    _missing_chunk(record, name, change.ref, exc, bad, erasures)
                    continue
            if change.d not in chunks_ok:
                sealed.change(record, name, change, payloads, bad)
            if change.ref is not None:
                chunks_ok.add(change.d)
        elif change.ref is not None:
            if change.ref.sha256 != change.d:
                bad(record.step, "state", f"the chunk of {name!r} is not the one hashed")
            elif payloads is not None and change.d not in chunks_ok:
                try:
                    payloads.get(change.ref)
                    chunks_ok.add(change.d)
                except PayloadCorrupted as exc:
                    _missing_chunk(record, name, change.ref, exc, bad, erasures)
        elif change.s is None:
            # No salt: only an erased value may lack one, and an erased value is gone too.
            if change.v is not None:
                bad(record.step, "state", f"{name!r} holds a value without the salt it needs")
            else:
                erasures.erased(record.step, name)
        elif sha256_hex(chunk_bytes(change.s, change.v)) != change.d:
            bad(record.step, "state", f"the value of {name!r} does not match its digest")
    after = advance_all(digests, record.changes)
    if state_root(after) != record.root:
        bad(
            record.step,
            "state",
            "the field digests folded from the earlier records do not give this record's "
            "state root",
        )
    return after


def _missing_chunk(
    record: Checkpoint,
    name: str,
    ref: PayloadRef,
    exc: PayloadCorrupted,
    bad: Any,
    erasures: _Erasures,
) -> None:
    """A chunk that cannot be read is an erased value where a signed erasure record names
    both the chunk and the (step, field): an erasure interrupted after deleting its objects
    and before rewriting this row (a rerun finishes it). Anything else is a bad payload."""
    if erasures.payload_erased(ref.sha256) and erasures.covers(record.step, name):
        erasures.erased(record.step, name)
    else:
        bad(record.step, "payload", f"the chunk of {name!r}: {exc}")


def record_refs(record: Checkpoint) -> dict[str, PayloadRef]:
    """Every payload a record refers to, by digest (a format-2 record's chunks are checked
    under `state`)."""
    refs = collect_refs(record.values) if record.format < 2 else {}
    for io in record.io:
        collect_refs(io.response, refs)
    # A big interrupt payload, resume value or task argument is a whole `{"$payload": ref}`
    # (`sealing.chunked_part`).
    parts = [v for values in record.resume.values() for v in values]
    parts += [task.arg for task in record.next if task.arg is not None]
    if record.interrupt is not None:
        parts.append(record.interrupt.payload)
    for part in parts:
        if is_ref(part):
            collect_refs(part, refs)
    for ref in (record.next_ref, record.io_ref):
        if ref is not None:
            refs[ref.sha256] = ref
    return refs


def chunk_refs(record: Checkpoint) -> dict[str, PayloadRef]:
    return {c.ref.sha256: c.ref for c in record.changes.values() if c.ref is not None}


def _check_payloads(
    record: Checkpoint, payloads: PayloadStore, bad: Any, erasures: _Erasures
) -> None:
    refs = record_refs(record)
    for ref in refs.values():
        try:
            payloads.get(ref)
        except PayloadCorrupted as exc:
            if not erasures.payload_erased(ref.sha256):
                bad(record.step, "payload", str(exc))


class _Erasures:
    """The erasure records as `verify` uses them: which (step, field) values and which
    payloads may be gone, and which erased values it found."""

    def __init__(
        self,
        thread_id: str,
        records: Sequence[Checkpoint],
        evidence: LedgerEvidence,
        bad: Any,
    ) -> None:
        self.known = evidence.erasures is not None
        self.bad = bad
        self.records, problems = parse_erasures(list(evidence.erasures or []))
        problems += check_erasures(thread_id, self.records, evidence.trusted_keys)
        last = records[-1].step if records else 0
        for problem in problems:
            bad(last, "erasure", problem)
        self.payloads = {sha for r in self.records for sha in r.payloads}
        self.found: dict[int, list[str]] = {}

    def erased(self, step: int, name: str) -> None:
        if not name.startswith("io:"):  # an io response is checked, not listed (see `io`)
            self.found.setdefault(step, []).append(name)
        if self.known and not any(r.covers(step, name) for r in self.records):
            self.bad(
                step,
                "erasure",
                f"the value of {name!r} is gone but no erasure record names it",
            )

    def covers(self, step: int, name: str) -> bool:
        return any(r.covers(step, name) for r in self.records)

    def hash_ok(self, record: Checkpoint) -> bool:
        """The record's content gives its hash, or (an io response erased) a signed erasure
        record attests both its hash and its erased content."""
        computed = record.compute_hash()
        if computed == record.hash:
            return True
        return any(r.attests(record.step, record.hash, computed) for r in self.records)

    def payload_erased(self, sha256: str) -> bool:
        return sha256 in self.payloads


def _check_transition(record: Checkpoint, previous: Checkpoint | None, bad: Any) -> None:
    if record.step == 0 or previous is None:
        if record.source not in ("input", "fork"):
            bad(
                record.step, "transition", f"step 0 must be an input or a fork, not {record.source}"
            )
        return
    before = previous.status
    if record.source == "fork":
        bad(record.step, "transition", "a fork record can only be step 0")
    elif record.source == "input":
        # A thread's next turn (new input, or a turn from a past checkpoint) follows a step
        # where the thread had stopped; never one whose tasks are still in flight.
        if before == "running":
            bad(record.step, "transition", "new input follows a running step")
    elif before == "completed":
        bad(record.step, "transition", "only new input may follow a completed step")
    elif record.source == "update" and before not in ("suspended", "failed"):
        bad(
            record.step,
            "transition",
            f"a decision (update) follows a {before} step: resumes are legal only after a "
            "suspension or a failure, one decision per interrupt",
        )
    elif record.source == "node" and before != "running":
        stopped = record.status == "failed" and not record.nodes and before == "suspended"
        if not stopped:
            bad(record.step, "transition", f"a node step follows a {before} step")


def _check_origin(record: Checkpoint, evidence: LedgerEvidence, bad: Any) -> None:
    parent = record.parent
    if parent is None or parent.thread_id == record.thread_id:
        bad(record.step, "origin", "a fork's step 0 must name the thread it was forked from")
        return
    origin = evidence.origin.with_io_restored() if evidence.origin is not None else None
    if origin is None:
        evidence.notes.append(
            f"origin {parent.thread_id} step {parent.step} not available: fork link not checked"
        )
        return
    if origin.thread_id != parent.thread_id or origin.step != parent.step:
        bad(record.step, "origin", "the origin record given is not the one the fork names")
    elif origin.hash != parent.hash or not _origin_hash_ok(origin, evidence):
        bad(
            record.step,
            "origin",
            f"origin {parent.thread_id} step {parent.step} no longer has the hash the fork "
            "recorded",
        )


def _origin_hash_ok(origin: Checkpoint, evidence: LedgerEvidence) -> bool:
    """The origin record's content gives its hash, or its own thread's erasure records (sound
    ones) attest it: an io response erased there after the fork was made."""
    computed = origin.compute_hash()
    if computed == origin.hash:
        return True
    records, problems = parse_erasures(list(evidence.origin_erasures or []))
    if problems or check_erasures(origin.thread_id, records, evidence.trusted_keys):
        return False
    return any(r.attests(origin.step, origin.hash, computed) for r in records)


def _check_signatures(
    thread_id: str, records: Sequence[Checkpoint], evidence: LedgerEvidence, bad: Any
) -> tuple[list[int], list[str]]:
    trusted = evidence.trusted_keys or {}
    by_step = {r.step: r for r in records}
    signed: list[int] = []
    keys: list[str] = []
    newest_count = 0
    for raw in evidence.signatures or []:
        sig = raw if isinstance(raw, HeadSignature) else parse_signature(raw)
        if sig is None:
            step = raw.get("step") if isinstance(raw, dict) else None
            bad(step if isinstance(step, int) else 0, "signature", "unreadable signature record")
            continue
        key = trusted.get(sig.key_id)
        raw_sig = decode_signature(sig)
        if key is None:
            bad(
                sig.step,
                "signature",
                f"signed by key {sig.key_id}, which is not a trusted ledger key "
                f"({', '.join(sorted(trusted)) or 'none'})",
            )
            continue
        if raw_sig is None or not verify_signature(key, sig.signed_bytes(), raw_sig):
            bad(sig.step, "signature", "the signature does not match the signed head")
            continue
        if sig.thread_id != thread_id or sig.step_count != sig.step + 1:
            bad(sig.step, "signature", "the signed head names another thread or step count")
            continue
        newest_count = max(newest_count, sig.step_count)
        record = by_step.get(sig.step)
        if record is None:
            continue  # reported once below, as a truncated tail or a missing step
        if record.hash != sig.head_hash:
            bad(
                sig.step,
                "signature",
                f"step {sig.step} is not the record that was signed at {sig.signed_at}: "
                "the chain up to here was rewritten since",
            )
            continue
        signed.append(sig.step)
        if sig.key_id not in keys:
            keys.append(sig.key_id)
    if not evidence.complete:
        return sorted(signed), keys
    if newest_count > len(records):
        bad(
            len(records),
            "signature",
            f"the newest signed head names {newest_count} steps, the chain has {len(records)}: "
            "the tail was truncated",
        )
    if records:
        head = records[-1]
        if head.status in SIGNED_STATUSES and head.step not in signed and newest_count <= head.step:
            bad(
                head.step,
                "signature",
                f"the head (step {head.step}, {head.status}) is not signed: steps were appended "
                "after the last signature, or the process stopped before signing "
                "(`durable-graph sign` after checking them)",
            )
    return sorted(signed), keys


__all__ = [
    "CHECKS",
    "LedgerEvidence",
    "VerifyReport",
    "chunk_refs",
    "record_refs",
    "verify_chain",
]
