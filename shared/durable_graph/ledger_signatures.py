"""The `signature` check of `ledger.verify_chain`: every stored head signature is by a trusted
key and names a record still there; a stopped head is signed; no signed tail is missing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from durable_graph.checkpoint import Checkpoint
from durable_graph.ledger_report import LedgerEvidence
from durable_graph.signing import (
    SIGNED_STATUSES,
    HeadSignature,
    decode_signature,
    parse_signature,
    verify_signature,
)


def check_signatures(
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
        message = sig.signed_message()
        if raw_sig is None or message is None or not verify_signature(key, message, raw_sig):
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


__all__ = ["check_signatures"]
