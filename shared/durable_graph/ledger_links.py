"""The `link`, `transition` and `origin` checks of `ledger.verify_chain`: how each record
follows the one before it (or, for a fork's step 0, the record it was forked from)."""

from __future__ import annotations

from typing import Any

from durable_graph.canonical import ZERO_HASH
from durable_graph.checkpoint import Checkpoint
from durable_graph.erasure_record import check_erasures, parse_erasures
from durable_graph.ledger_report import LedgerEvidence


def check_link(record: Checkpoint, previous: Checkpoint | None, bad: Any) -> None:
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


def check_transition(record: Checkpoint, previous: Checkpoint | None, bad: Any) -> None:
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


def check_origin(record: Checkpoint, evidence: LedgerEvidence, bad: Any) -> None:
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


__all__ = ["check_link", "check_origin", "check_transition"]
