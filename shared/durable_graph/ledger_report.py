"""What `ledger.verify_chain` takes besides the records, and the report it gives.

The report names every problem found (step, check, reason) and the first; the evidence is all a
verifier may have besides the records (signatures, trusted keys, a fork's origin, erasure
records, the thread's data key), each optional, so one verifier serves a store and a bundle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from durable_graph.checkpoint import Checkpoint
from durable_graph.encryption import ThreadCipher
from durable_graph.sealed_checks import KeyStateName
from durable_graph.signing import HeadSignature, PublicKey

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


__all__ = ["CHECKS", "CHECKS_WITH_SIGNATURES", "LedgerEvidence", "VerifyReport"]
