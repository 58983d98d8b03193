"""The `state` and `payload` checks of `ledger.verify_chain`: every chunk against its digest,
the field digests folded into each record's state root, every referenced payload present."""

from __future__ import annotations

from typing import Any

from durable_graph.canonical import sha256_hex
from durable_graph.changes import advance_all, chunk_bytes, state_root
from durable_graph.checkpoint import Checkpoint, PayloadRef
from durable_graph.encryption import is_sealed
from durable_graph.errors import PayloadCorrupted
from durable_graph.ledger_erasures import LedgerErasures
from durable_graph.ledger_refs import record_refs
from durable_graph.ports.payload_store import PayloadStore
from durable_graph.sealed_checks import SealedChecks


def check_state(
    record: Checkpoint,
    digests: dict[str, str],
    payloads: PayloadStore | None,
    bad: Any,
    chunks_ok: set[str],
    erasures: LedgerErasures,
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
    erasures: LedgerErasures,
) -> None:
    """A chunk that cannot be read is an erased value where a signed erasure record names
    both the chunk and the (step, field): an erasure interrupted after deleting its objects
    and before rewriting this row (a rerun finishes it). Anything else is a bad payload."""
    if erasures.payload_erased(ref.sha256) and erasures.covers(record.step, name):
        erasures.erased(record.step, name)
    else:
        bad(record.step, "payload", f"the chunk of {name!r}: {exc}")


def check_payloads(
    record: Checkpoint, payloads: PayloadStore, bad: Any, erasures: LedgerErasures
) -> None:
    refs = record_refs(record)
    for ref in refs.values():
        try:
            payloads.get(ref)
        except PayloadCorrupted as exc:
            if not erasures.payload_erased(ref.sha256):
                bad(record.step, "payload", str(exc))


__all__ = ["check_payloads", "check_state"]
