"""Audit bundles: one self-contained JSON file per thread that verifies on another machine.

A bundle holds every record (as stored: format-2 records carry their changes, not the whole
state; `docs/record-format.md`), every payload they
refer to (base64), every head signature, the public key(s) that made them, and for a fork the
origin record it links to. `verify_bundle` checks it with the same ledger code as `verify`,
with no access to any store. Which key to trust is the verifier's decision: by default the
bundle's own key is used and its fingerprint reported (compare it with the one you published);
`trusted=` pins a key, and a bundle signed by another key then fails.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from durable_graph.backend import Backend
from durable_graph.checkpoint import Checkpoint, PayloadRef
from durable_graph.clock import SystemClock, iso
from durable_graph.errors import InvalidInput, PayloadCorrupted
from durable_graph.ledger import verify_chain
from durable_graph.ledger_refs import chunk_refs, record_refs
from durable_graph.ledger_report import LedgerEvidence, VerifyReport
from durable_graph.ports.payload_store import StoredObject
from durable_graph.sealed_payloads import raw_payloads
from durable_graph.signing import PublicKey
from durable_graph.verification import gather

FORMAT = "durable-graph-audit-bundle/1"


class Bundle(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: str = FORMAT
    thread_id: str
    exported_at: str
    records: list[dict[str, Any]]
    payloads: dict[str, str] = Field(default_factory=dict)
    signatures: list[dict[str, Any]] = Field(default_factory=list)
    public_keys: list[PublicKey] = Field(default_factory=list)
    origin: dict[str, Any] | None = None
    thread: dict[str, Any] | None = None
    erasures: list[dict[str, Any]] = Field(default_factory=list)  # signed erasure records
    origin_erasures: list[dict[str, Any]] = Field(default_factory=list)  # a fork's origin's
    # the store's signed revocations of operator certificates, when an operator signed one of
    # the thread's approvals (`operator_registry.py`): checked offline like the store's. Left
    # out when empty, so such a bundle is written as before the field (older verifiers read it).
    revocations: list[dict[str, Any]] = Field(default_factory=list, exclude_if=lambda v: not v)


class BundlePayloads:
    """A read-only `PayloadStore` over a bundle's payloads, digest-checked like any store."""

    def __init__(self, blobs: dict[str, str]) -> None:
        self._blobs = blobs

    def put(self, data: bytes, content_type: str = "application/octet-stream") -> PayloadRef:
        raise InvalidInput("an audit bundle is read-only")

    def delete(self, ref: PayloadRef) -> bool:
        raise InvalidInput("an audit bundle is read-only")

    def list_objects(self, after: str = "", limit: int = 1000) -> list[StoredObject]:
        return []  # nothing to collect: a bundle holds exactly what its records name

    def delete_idle(
        self, digests: Sequence[str], since: datetime, *, dry_run: bool = False
    ) -> list[str]:
        raise InvalidInput("an audit bundle is read-only")

    def get(self, ref: PayloadRef) -> bytes:
        encoded = self._blobs.get(ref.sha256)
        if encoded is None:
            raise PayloadCorrupted(f"payload {ref.sha256} is missing from the bundle")
        data = base64.b64decode(encoded)
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise PayloadCorrupted(f"payload {ref.sha256} does not match its digest")
        return data


def build_bundle(backend: Backend, thread_id: str) -> Bundle:
    evidence = gather(backend, thread_id)
    if evidence.corrupt is not None:
        raise InvalidInput(f"cannot export {thread_id!r}: {evidence.corrupt}")
    payloads: dict[str, str] = {}
    stored = raw_payloads(backend.payloads)
    for record in evidence.records:
        refs = {**record_refs(record), **chunk_refs(record)}
        for digest_hex, ref in refs.items():
            if digest_hex not in payloads:
                try:
                    data = stored.get(ref)  # as stored: a sealed payload stays sealed
                except PayloadCorrupted:
                    continue  # exported as missing: the bundle then fails `payload`, as the store
                payloads[digest_hex] = base64.b64encode(data).decode("ascii")
    thread = backend.checkpoints.inner.get_thread(thread_id)  # as stored: sealed parts sealed
    return Bundle(
        thread_id=thread_id,
        exported_at=iso(SystemClock().now()),
        records=[r.stored().model_dump(mode="json") for r in evidence.records],
        payloads=payloads,
        signatures=evidence.signatures,
        public_keys=[backend.signer.public_key()] if backend.signer is not None else [],
        origin=evidence.origin.stored().model_dump(mode="json") if evidence.origin else None,
        thread=thread.model_dump(mode="json") if thread else None,
        erasures=evidence.erasures,
        origin_erasures=evidence.origin_erasures,
        revocations=evidence.revocations,
    )


def export_bundle(backend: Backend, thread_id: str, out: Path) -> Bundle:
    bundle = build_bundle(backend, thread_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(bundle.model_dump_json(indent=1), encoding="utf-8")
    return bundle


def load_bundle(path: Path) -> Bundle:
    try:
        return Bundle.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise InvalidInput(f"no bundle at {path}", field="bundle") from None
    except (ValidationError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{path} is not an audit bundle: {exc}", field="bundle") from None


def verify_bundle(bundle: Bundle, *, trusted: list[PublicKey] | None = None) -> VerifyReport:
    """Verify a bundle offline. `trusted`: keys to accept; default the bundle's own keys."""
    records: list[Checkpoint] = []
    problems: list[dict[str, object]] = []
    for index, raw in enumerate(bundle.records):
        if isinstance(raw, dict) and raw.get("format", 1) >= 2 and raw.get("values"):
            problems.append(
                {
                    "step": raw.get("step", index),
                    "check": "parse",
                    "reason": "a format-2 record carries its changes, not a whole state: the "
                    "`values` it holds are proven by nothing",
                }
            )
            break
        try:
            records.append(Checkpoint.model_validate(raw))
        except ValidationError as exc:
            step = raw.get("step", index) if isinstance(raw, dict) else index
            problems.append({"step": step, "check": "parse", "reason": str(exc.errors()[0])})
            break
    origin = Checkpoint.model_validate(bundle.origin) if bundle.origin else None
    keys = trusted if trusted is not None else bundle.public_keys
    expected = bundle.thread.get("head_step") if bundle.thread else None
    report = verify_chain(
        bundle.thread_id,
        records,
        BundlePayloads(bundle.payloads),
        LedgerEvidence(
            signatures=bundle.signatures,
            trusted_keys={k.key_id: k for k in keys},
            origin=origin,
            expected_head=expected if isinstance(expected, int) and not problems else None,
            complete=not problems,
            erasures=bundle.erasures,
            origin_erasures=bundle.origin_erasures,
            revocations=bundle.revocations,
        ),
    )
    if trusted is None:
        report.notes.append(
            "signatures checked against the bundle's own key(s) "
            f"{', '.join(k.key_id for k in bundle.public_keys) or '(none)'}: compare the "
            "fingerprint with your published ledger key, or pass --trusted-key"
        )
    if problems:
        report.problems = sorted([*problems, *report.problems], key=lambda p: int(str(p["step"])))
        first = report.problems[0]
        report.ok = False
        report.first_bad_step = int(str(first["step"]))
        report.check = str(first["check"])
        report.reason = f"step {first['step']}: {first['check']}: {first['reason']}"
    return report


__all__ = ["FORMAT", "Bundle", "build_bundle", "export_bundle", "load_bundle", "verify_bundle"]
