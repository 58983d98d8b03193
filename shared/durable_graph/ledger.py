"""Verifying a thread's hash chain: every record's hash, every link, contiguous steps, and every
payload digest. Reports the first bad step and which check failed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from durable_graph.canonical import ZERO_HASH
from durable_graph.checkpoint import Checkpoint
from durable_graph.errors import PayloadCorrupted
from durable_graph.payloads import collect_refs
from durable_graph.ports import PayloadStore


@dataclass
class VerifyReport:
    thread_id: str
    ok: bool
    checked: int
    first_bad_step: int | None = None
    check: str | None = None
    reason: str | None = None
    problems: list[dict[str, object]] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        if self.ok:
            return {"ok": True, "thread_id": self.thread_id, "checked": self.checked}
        return {
            "ok": False,
            "thread_id": self.thread_id,
            "checked": self.checked,
            "first_bad_step": self.first_bad_step,
            "check": self.check,
            "reason": self.reason,
            "problems": self.problems,
        }


def verify_chain(
    thread_id: str, records: Sequence[Checkpoint], payloads: PayloadStore | None
) -> VerifyReport:
    """`records` oldest first. Checks each record; collects every problem, names the first."""
    problems: list[dict[str, object]] = []

    def bad(step: int, check: str, reason: str) -> None:
        problems.append({"step": step, "check": check, "reason": reason})

    previous: Checkpoint | None = None
    for index, record in enumerate(records):
        if record.thread_id != thread_id:
            bad(record.step, "thread", f"record belongs to thread {record.thread_id!r}")
        if record.step != index:
            bad(index, "contiguity", f"expected step {index}, found step {record.step}")
        expected_prev = previous.hash if previous is not None else ZERO_HASH
        if record.step == 0 and record.source == "fork" and record.parent is not None:
            expected_prev = record.prev_hash  # a fork's step 0 links to its origin, checked apart
        if record.prev_hash != expected_prev:
            bad(record.step, "link", "prev_hash does not match the previous record's hash")
        recomputed = record.compute_hash()
        if recomputed != record.hash:
            bad(record.step, "hash", "record content does not match its hash")
        if payloads is not None:
            refs = collect_refs(record.values)
            for io in record.io:
                collect_refs(io.response, refs)
            for ref in refs.values():
                try:
                    payloads.get(ref)
                except PayloadCorrupted as exc:
                    bad(record.step, "payload", str(exc))
        previous = record
    if not records:
        bad(0, "contiguity", "thread has no records")
    problems.sort(key=lambda p: int(str(p["step"])))
    if problems:
        first = problems[0]
        return VerifyReport(
            thread_id,
            ok=False,
            checked=len(records),
            first_bad_step=int(str(first["step"])),
            check=str(first["check"]),
            reason=f"step {first['step']}: {first['check']}: {first['reason']}",
            problems=problems,
        )
    return VerifyReport(thread_id, ok=True, checked=len(records))
