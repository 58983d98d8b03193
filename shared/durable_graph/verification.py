"""Gather a stored thread's evidence (records, signatures, origin, thread record) and verify it
with the ledger. Records altered into garbage still get a step number."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from durable_graph.backend import Backend
from durable_graph.checkpoint import Checkpoint
from durable_graph.erasure_record import load_erasures
from durable_graph.errors import CorruptRecord, ThreadNotFound
from durable_graph.keys import DATA_KEY, KeyState
from durable_graph.ledger import verify_chain
from durable_graph.ledger_report import LedgerEvidence, VerifyReport
from durable_graph.operator_registry import stored_revocations
from durable_graph.pending_deletes import pending_deletes
from durable_graph.sealed_payloads import raw_payloads
from durable_graph.signing import SIG_PREFIX, PublicKey

VERIFY_PAGE = 100  # threads per page of `verify --all`
SIGNATURE_PROBE = 16  # steps past the chain's end searched for signatures of a truncated tail


def load_records(backend: Backend, thread_id: str) -> tuple[list[Checkpoint], CorruptRecord | None]:
    """Every record oldest first; on an unreadable one, the readable ones before it and why."""
    store = backend.checkpoints
    try:
        return store.ledger(thread_id), None
    except CorruptRecord:
        pass
    records: list[Checkpoint] = []
    step = 0
    misses = 0
    while misses < 3:
        try:
            record = store.get_checkpoint(thread_id, step)
        except CorruptRecord as exc:
            return records, exc
        if record is None:
            misses += 1
        else:
            misses = 0
            records.append(record)
        step += 1
    return records, None


def load_signatures(backend: Backend, thread_id: str, last_step: int) -> list[dict[str, Any]]:
    """Signature records of steps 0..last_step and a little beyond (a truncated tail), read
    as one batch (100 keys per request on DynamoDB) rather than a read per step."""
    keys = [f"{SIG_PREFIX}{step}" for step in range(last_step + SIGNATURE_PROBE + 1)]
    found = backend.checkpoints.get_records(thread_id, keys)
    return [found[key].value for key in keys if key in found]


def trusted_keys(backend: Backend) -> dict[str, PublicKey] | None:
    if backend.signer is None:
        return None
    key = backend.signer.public_key()
    return {key.key_id: key}


@dataclass
class ThreadEvidence:
    records: list[Checkpoint]
    signatures: list[dict[str, Any]]
    origin: Checkpoint | None
    expected_head: int | None
    corrupt: CorruptRecord | None = None
    notes: list[str] = field(default_factory=list)
    erasures: list[dict[str, Any]] = field(default_factory=list)
    origin_erasures: list[dict[str, Any]] = field(default_factory=list)
    # the store's revocations of operator certificates (read only for a thread whose
    # decisions an operator signed)
    revocations: list[dict[str, Any]] = field(default_factory=list)


def gather(backend: Backend, thread_id: str) -> ThreadEvidence:
    store = backend.checkpoints
    records, corrupt = load_records(backend, thread_id)
    thread = store.get_thread(thread_id)
    if not records and thread is None and corrupt is None:
        raise ThreadNotFound(thread_id)
    last = max([r.step for r in records] + [thread.head_step if thread else 0])
    origin: Checkpoint | None = None
    first = records[0] if records else None
    if first is not None and first.source == "fork" and first.parent is not None:
        try:
            origin = store.stored_record(first.parent.thread_id, first.parent.step)
        except CorruptRecord:
            origin = None
    return ThreadEvidence(
        records=records,
        signatures=load_signatures(backend, thread_id, last),
        origin=origin,
        expected_head=thread.head_step if thread else None,
        corrupt=corrupt,
        erasures=load_erasures(store, thread_id),
        origin_erasures=load_erasures(store, origin.thread_id) if origin else [],
        revocations=stored_revocations(store) if _operator_signed(records) else [],
    )


def _operator_signed(records: list[Checkpoint]) -> bool:
    """Whether an enrolled operator signed an approval of these records."""
    return any(a.operator is not None for r in records if r.signoff for a in r.signoff.approvals)


def data_key_state(backend: Backend, thread_id: str) -> KeyState:
    """What the store holds of the thread's data key (encryption at rest), and the key itself
    when this process may unwrap it."""
    keys = backend.checkpoints.keys
    if keys is not None:
        return keys.lookup(thread_id)
    found = backend.checkpoints.get_record(thread_id, DATA_KEY)
    if found is None:
        return KeyState("none")
    if "wrapped" not in found.value:
        return KeyState("destroyed", record=found.value)
    return KeyState("locked", record=found.value, why="no key-encryption key configured")


def verify_thread(backend: Backend, thread_id: str) -> VerifyReport:
    evidence = gather(backend, thread_id)
    key = data_key_state(backend, thread_id)
    report = verify_chain(
        thread_id,
        evidence.records,
        raw_payloads(backend.payloads),
        LedgerEvidence(
            signatures=evidence.signatures,
            trusted_keys=trusted_keys(backend),
            origin=evidence.origin,
            expected_head=evidence.expected_head if evidence.corrupt is None else None,
            complete=evidence.corrupt is None,
            erasures=evidence.erasures,
            origin_erasures=evidence.origin_erasures,
            revocations=evidence.revocations,
            cipher=key.cipher,
            key_state=key.state,
        ),
    )
    if evidence.erasures:
        report.notes += scheduled_note(backend, thread_id)
    exc = evidence.corrupt
    if exc is not None and (report.ok or (report.first_bad_step or 0) >= exc.step):
        problem: dict[str, object] = {"step": exc.step, "check": "parse", "reason": str(exc)}
        report.problems = [problem, *[p for p in report.problems if p["step"] != exc.step]]
        report.problems.sort(key=lambda p: int(str(p["step"])))
        report.ok = False
        report.first_bad_step = exc.step
        report.check = "parse"
        report.reason = f"step {exc.step}: parse: {exc}"
    return report


def scheduled_note(backend: Backend, thread_id: str) -> list[str]:
    """Objects the thread's erasures named and scheduled rather than deleted (stored moments
    before: `pending_deletes.py`): still there, and allowed to be, gone or not."""
    pending = pending_deletes(backend.checkpoints, thread_id)
    if not pending:
        return []
    by = sorted({str(entry.erasure) for entry in pending})
    return [
        f"{len(pending)} payload object(s) named by erasure {', '.join(by)} are scheduled for "
        "deletion and still stored (the next retention run or erase of the thread deletes them)"
    ]


def verify_all(
    backend: Backend, *, progress: Callable[[int, VerifyReport], None] | None = None
) -> list[VerifyReport]:
    """Verify every thread the store knows, oldest update first, reading the thread list one
    page at a time (`page_threads`: the status index on DynamoDB), so the first report comes
    before the whole list is read; `progress(done, report)` after each thread."""
    reports: list[VerifyReport] = []
    cursor: str | None = None
    while True:
        page = backend.checkpoints.page_threads(
            newest_first=False, limit=VERIFY_PAGE, cursor=cursor
        )
        for thread in page.threads:
            reports.append(verify_thread(backend, thread.thread_id))
            if progress is not None:
                progress(len(reports), reports[-1])
        cursor = page.cursor
        if cursor is None:
            return reports


__all__ = [
    "data_key_state",
    "gather",
    "load_records",
    "trusted_keys",
    "verify_all",
    "verify_thread",
]
