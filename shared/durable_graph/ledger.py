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

from collections.abc import Sequence

from durable_graph.approval_record import problems as signoff_problems
from durable_graph.checkpoint import Checkpoint
from durable_graph.erasure_parts import erased_part_names
from durable_graph.ledger_erasures import LedgerErasures
from durable_graph.ledger_links import check_link, check_origin, check_transition
from durable_graph.ledger_report import CHECKS, CHECKS_WITH_SIGNATURES, LedgerEvidence, VerifyReport
from durable_graph.ledger_signatures import check_signatures
from durable_graph.ledger_state import check_payloads, check_state
from durable_graph.operator_keys import proof_problems
from durable_graph.operator_validity import check_revocations
from durable_graph.ports.payload_store import PayloadStore
from durable_graph.sealed_checks import SealedChecks


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
    erasures = LedgerErasures(thread_id, records, evidence, bad)
    sealed = SealedChecks(evidence.cipher, evidence.key_state, erasures.covers, erasures.erased)
    approved: dict[int, list[str]] = {}
    revoked = check_revocations(evidence.revocations or [], evidence.trusted_keys)
    for index, stored in enumerate(records):
        record = stored.with_io_restored()
        if record.thread_id != thread_id:
            bad(record.step, "thread", f"record belongs to thread {record.thread_id!r}")
        if record.step != index:
            bad(index, "contiguity", f"expected step {index}, found step {record.step}")
        check_link(record, previous, bad)
        if not erasures.hash_ok(record):
            bad(record.step, "hash", "record content does not match its hash")
        if record.format >= 2:
            # The fold starts at step 0, or where format 2 takes over (a record setting all).
            fresh = previous is None or previous.format < 2 or record.step == 0
            digests = check_state(
                record, {} if fresh else digests, payloads, bad, chunks_ok, erasures, sealed
            )
            sealed.io(record, payloads, bad)
            for part in erased_part_names(stored, payloads):
                erasures.erased(record.step, part)
        if payloads is not None:
            check_payloads(record, payloads, bad, erasures)
        check_transition(record, previous, bad)
        for problem in signoff_problems(record) + proof_problems(
            record, evidence.trusted_keys, revoked
        ):
            bad(record.step, "signoff", problem)
        if record.signoff is not None:
            approved[record.step] = [
                f"{a.actor.kind}:{a.actor.id}" for a in record.signoff.approvals
            ]
        if record.step == 0 and record.source == "fork":
            check_origin(record, evidence, bad)
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
        signed, key_ids = check_signatures(thread_id, records, evidence, bad)
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


__all__ = ["verify_chain"]
