"""The erasure records as `ledger.verify_chain` uses them (`erasure_record.py`): which values
and payloads may be gone, and which erased values the checks found."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from durable_graph.checkpoint import Checkpoint
from durable_graph.erasure_record import check_erasures, parse_erasures
from durable_graph.ledger_report import LedgerEvidence


class LedgerErasures:
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


__all__ = ["LedgerErasures"]
