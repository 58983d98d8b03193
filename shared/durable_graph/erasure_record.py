"""The signed erasure record: who erased which fields at which steps, when and why.

Erasure (`erasure.py`) destroys values and keeps their salted digests, so every hash, link,
state root and head signature still verifies. What it leaves behind must itself be evidence:
an erased change (`{op, d}` with no `s`, `v` or `ref`) is accepted by `verify` only where an
erasure record names its step and field, and a payload named by a hashed record (an io
response's `$payload`) may be missing only where an erasure record lists its digest. A row
edited to drop a value without such a record is therefore a `erasure` problem, not a silent
pass.

An io response (what `ctx.record`/`ctx.step` returned) is hashed in the clear by format 2, so
erasing one changes what the record's hash covers. The erasing process verifies the thread
first, then the erasure record *attests* such a step: the hash it had (which the next record's
`prev_hash` and the head signatures still name) and the digest of its hash body once erased.
`verify` accepts a step whose hash no longer recomputes only against such a signed
attestation, and any other edit of that record still fails, as the erased body's digest no
longer matches.

Erasure records live beside the chain, like head signatures, as the thread's records
`erasure#1`, `erasure#2`, … (created iff absent, never replaced). They are not chain steps: a
completed thread takes no more steps, and erasure must not need the application's graph. Each
is signed with the ledger key over `JCS(record without "signature")`; a later record names
the digest of the one before (`prev`), so removing one from the middle is caught too.
Retention writes the same record (`reason` starts with `retention:`, actor `system`) as its
tombstone. `docs/erasure-and-retention.md` is the walkthrough; `docs/record-format.md` §13
the contract.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from durable_graph.canonical import canonical_bytes, digest
from durable_graph.checkpoint import Actor
from durable_graph.ports.checkpoint_store import CheckpointStore
from durable_graph.signing import PublicKey, Signer, verify_signature

ERASURE_PREFIX = "erasure#"
PROBE = 64  # erasure record keys read per batch
ERASED = "$erased"  # the key of the marker a read returns in place of an erased value


class ErasureRecord(BaseModel):
    """One erasure request as carried out. `steps` maps a step (as a string: JSON keys) to the
    fields erased there; `payloads` are the digests of payload objects destroyed (or allowed to
    be absent); `kept` says what the request named but the format could not erase, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    thread_id: str
    seq: int
    erased_at: str
    actor: Actor
    reason: str
    fields: list[str] | None = None  # as requested; None: every field ([]: parts only)
    steps: dict[str, list[str]] = Field(default_factory=dict)
    payloads: list[str] = Field(default_factory=list)
    kept: list[dict[str, Any]] = Field(default_factory=list)
    # step -> {"hash": the record's hash, "body": digest of its hash body once erased}, for
    # records whose hash covered an erased io response (hashed in the clear, §13)
    attested: dict[str, dict[str, str]] = Field(default_factory=dict)
    io: dict[str, list[int]] = Field(default_factory=dict)  # step -> io responses erased
    # step -> the other parts of its record erased (`erasure_parts.py`): "arg:<task id>",
    # "interrupt", "resume:<task id>", "error". Left out of the signed body when empty, so
    # records written before it existed keep their signatures.
    parts: dict[str, list[str]] = Field(default_factory=dict)
    head_step: int
    head_hash: str
    prev: str = ""  # digest of the signed body of erasure record seq-1 ("" for the first)
    # Encryption at rest: the thread's data key this erasure destroyed (its key-encryption
    # key's id, `keys.py`); "" when none. Left out of the signed body when empty, so records
    # written before it existed keep their signatures.
    data_key: str = ""
    key_id: str = ""
    algorithm: str = ""
    signature: str = ""
    # Not stored nor signed: the digests of `payloads` this erasure scheduled for deletion
    # rather than deleting them (stored moments ago: `pending_deletes.py`).
    _scheduled: list[str] = PrivateAttr(default_factory=list)

    @property
    def scheduled(self) -> list[str]:
        return list(self._scheduled)

    def with_scheduled(self, digests: list[str]) -> ErasureRecord:
        """This record, as returned by the erasure that scheduled `digests`."""
        copy = self.model_copy()
        copy._scheduled = list(digests)
        return copy

    def signed_bytes(self) -> bytes:
        return canonical_bytes(self._body())

    def body_digest(self) -> str:
        return digest(self._body())

    def _body(self) -> dict[str, Any]:
        left_out = {"signature"} if self.data_key else {"signature", "data_key"}
        if not self.parts:
            left_out.add("parts")
        return self.model_dump(mode="json", exclude=left_out)

    def covers(self, step: int, field: str) -> bool:
        """Whether this record erased state field (or record part) `field` at `step`."""
        key = str(step)
        if field.startswith("io:"):  # an io response: by its index
            return field[3:].isdigit() and int(field[3:]) in self.io.get(key, ())
        return field in self.steps.get(key, ()) or field in self.parts.get(key, ())

    def attests(self, step: int, stored_hash: str, body_digest: str) -> bool:
        """Whether this record vouches for a step whose hash can no longer be recomputed: it
        had `stored_hash` (checked in full before erasing) and, once erased, this body."""
        entry = self.attested.get(str(step))
        return entry is not None and entry == {"hash": stored_hash, "body": body_digest}

    def summary(self) -> dict[str, Any]:
        """What `verify` reports of it."""
        return {
            "seq": self.seq,
            "erased_at": self.erased_at,
            "by": f"{self.actor.kind}:{self.actor.id}",
            "reason": self.reason,
            "steps": self.steps,
            "io": self.io,
            **({"parts": self.parts} if self.parts else {}),
            "payloads": len(self.payloads),
            "kept": self.kept,
            **({"data_key_destroyed": self.data_key} if self.data_key else {}),
        }


def sign_erasure(record: ErasureRecord, signer: Signer | None) -> ErasureRecord:
    """The record signed by the ledger key (unsigned when the backend has no signer)."""
    if signer is None:
        return record
    public = signer.public_key()
    unsigned = record.model_copy(update={"key_id": public.key_id, "algorithm": public.algorithm})
    raw = signer.sign(unsigned.signed_bytes())
    return unsigned.model_copy(update={"signature": base64.b64encode(raw).decode("ascii")})


def load_erasures(store: CheckpointStore, thread_id: str) -> list[dict[str, Any]]:
    """The thread's erasure records, oldest first, as stored (read in batches of `PROBE`)."""
    found: list[dict[str, Any]] = []
    start = 1
    while True:
        keys = [f"{ERASURE_PREFIX}{n}" for n in range(start, start + PROBE)]
        batch = store.get_records(thread_id, keys)
        found.extend(batch[key].value for key in keys if key in batch)
        if len(batch) < PROBE:
            return found
        start += PROBE


def parse_erasures(raw: Sequence[Mapping[str, Any]]) -> tuple[list[ErasureRecord], list[str]]:
    """Parsed records and, for each unreadable one, why."""
    parsed: list[ErasureRecord] = []
    problems: list[str] = []
    for index, value in enumerate(raw, start=1):
        try:
            parsed.append(ErasureRecord.model_validate(value))
        except ValidationError as exc:
            problems.append(f"erasure record {index} is unreadable: {exc.errors()[0]['msg']}")
    return parsed, problems


def check_erasures(
    thread_id: str,
    records: Sequence[ErasureRecord],
    trusted: Mapping[str, PublicKey] | None,
) -> list[str]:
    """Problems with the erasure records themselves: numbering, the `prev` links, and (with
    trusted keys) each signature."""
    problems: list[str] = []
    previous = ""
    for index, record in enumerate(records, start=1):
        where = f"erasure record {record.seq}"
        if record.thread_id != thread_id or record.seq != index:
            problems.append(f"{where} names another thread or is out of sequence")
        if record.prev != previous:
            problems.append(f"{where} does not link to erasure record {index - 1}")
        previous = record.body_digest()
        if trusted is None:
            continue
        key = trusted.get(record.key_id)
        if key is None:
            problems.append(
                f"{where} is signed by {record.key_id or 'no key'}, not a trusted ledger key"
            )
            continue
        try:
            raw = base64.b64decode(record.signature, validate=True)
        except ValueError:
            raw = b""
        if not verify_signature(key, record.signed_bytes(), raw):
            problems.append(f"{where}: the signature does not match the record")
    return problems


def erased_marker(step: int, record: ErasureRecord | None) -> dict[str, Any]:
    """What a read returns in place of a value erased at `step`:
    `{"$erased": {"step": N, "by": "kind:id", "at": iso, "erasure": seq}}` (`by`, `at` and
    `erasure` only when the erasure record is at hand)."""
    detail: dict[str, Any] = {"step": step}
    if record is not None:
        detail.update(
            {
                "by": f"{record.actor.kind}:{record.actor.id}",
                "at": record.erased_at,
                "erasure": record.seq,
            }
        )
    return {ERASED: detail}


def is_erased(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and ERASED in value


def describe_erased(value: Any) -> str | None:
    """ "erased at step N by X" for a marker (or a list holding one), else None."""
    markers = [value] if is_erased(value) else []
    if isinstance(value, list):
        markers = [item for item in value if is_erased(item)]
    if not markers:
        return None
    detail = markers[0][ERASED]
    text = f"erased at step {detail.get('step')}"
    if detail.get("by"):
        text += f" by {detail['by']}"
    if isinstance(value, list) and len(value) > len(markers):
        text += f" ({len(value) - len(markers)} later item(s) kept)"
    return text


__all__ = [
    "ERASED",
    "ERASURE_PREFIX",
    "ErasureRecord",
    "check_erasures",
    "describe_erased",
    "erased_marker",
    "is_erased",
    "load_erasures",
    "parse_erasures",
    "sign_erasure",
]
