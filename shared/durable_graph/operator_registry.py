"""The store's list of operator enrolments and revocations (`operator list`, `operator revoke`).

Two compare-and-set records in the `__operators__` partition of the store's small records (not
a thread; beside `__retention__`), on every backend:

- `operators#enrolments`: `{certificates: [...]}`, every certificate `operator enrol` issued
  from this store, in order: what `operator list` shows and `operator revoke` looks up. It is
  a listing, not a source of trust: a certificate counts because the ledger key signed it (it
  travels in the approvals that use it), listed or not.
- `operators#revocations`: `{revocations: [...]}`, the ledger key's signed `Revocation`s, each
  numbered and linked to the one before (`operator_proof.Revocation`). This one is evidence:
  `sign_off` refuses approvals by a revoked certificate, and `verify` (and a bundle, which
  carries the list) judges each operator approval against it (`operator_validity.py`).

Both are appended by a compare-and-set loop, so two enrolments or revocations racing both land,
each once. A record holds at most about 400 KB on DynamoDB: some 800 enrolments, and
revocations of a few hundred bytes each.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from durable_graph.clock import Clock, iso
from durable_graph.errors import InvalidInput, RecordConflict
from durable_graph.operator_proof import OperatorCertificate, Revocation, revocation_bytes
from durable_graph.operator_validity import (
    Revocations,
    check_revocations,
    entry_digest,
    revocation_of,
)
from durable_graph.ports.checkpoint_store import CheckpointStore
from durable_graph.signing import Signer

OPERATORS_NAMESPACE = "__operators__"  # the records' partition (not a thread)
ENROLMENTS_KEY = "operators#enrolments"
REVOCATIONS_KEY = "operators#revocations"
MAX_REASON = 500
_CAS_ATTEMPTS = 8


def stored_revocations(store: CheckpointStore) -> list[dict[str, Any]]:
    """The revocation list as stored (unchecked), oldest first: what a bundle carries."""
    found = store.get_record(OPERATORS_NAMESPACE, REVOCATIONS_KEY)
    return list(found.value.get("revocations", [])) if found is not None else []


def revocations_of(store: CheckpointStore, signer: Signer | None) -> Revocations:
    """The store's revocation list, checked against its ledger key (`check_revocations`)."""
    raw = stored_revocations(store)
    if not raw:
        return Revocations()
    trusted = None
    if signer is not None:
        key = signer.public_key()
        trusted = {key.key_id: key}
    return check_revocations(raw, trusted)


def enrolments(store: CheckpointStore) -> list[OperatorCertificate]:
    """Every certificate `operator enrol` listed in this store, oldest first."""
    found = store.get_record(OPERATORS_NAMESPACE, ENROLMENTS_KEY)
    listed = found.value.get("certificates", []) if found is not None else []
    return [OperatorCertificate.model_validate(c) for c in listed]


def list_enrolment(store: CheckpointStore, certificate: OperatorCertificate) -> None:
    """Append `certificate` to the store's enrolments (compare-and-set)."""
    _append(store, ENROLMENTS_KEY, "certificates", lambda _: certificate.model_dump(mode="json"))


def revoke(
    store: CheckpointStore,
    signer: Signer,
    identity: str,
    *,
    reason: str,
    by: str,
    clock: Clock,
    key_id: str | None = None,
) -> Revocation:
    """Sign and append a revocation of `identity`'s certificates (only `key_id`'s when given)
    issued until now. Refused (nothing written) without a reason, when no listed certificate
    matches (unless `key_id` names one: certificates enrolled before the list existed), and
    when every matching one is revoked already."""
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise InvalidInput(
            f"--reason says why, in 1..{MAX_REASON} characters (it is kept with the revocation)",
            field="--reason",
        )
    who = identity.strip()
    now = iso(clock.now())
    matching = [
        c
        for c in enrolments(store)
        if c.identity.lower() == who.lower() and key_id in (None, c.key_id) and c.issued_at <= now
    ]
    if not matching and key_id is None:
        raise InvalidInput(
            f"no certificate for {who!r} is listed in this store (durable-graph operator list); "
            "for one enrolled before the list existed, name it with --key-id",
            field="identity",
        )
    current = revocations_of(store, signer)
    if matching and all(revocation_of(c, current, now) for c in matching):
        raise InvalidInput(
            f"every certificate for {who!r}{f' with key {key_id}' if key_id else ''} is revoked "
            "already (durable-graph operator list)",
            field="identity",
        )
    issuer = signer.public_key().key_id

    def signed(entries: list[dict[str, Any]]) -> dict[str, Any]:
        unsigned = Revocation(
            number=len(entries) + 1,
            previous=entry_digest(entries[-1]) if entries else "",
            identity=who,
            key_id=key_id,
            revoked_at=now,
            reason=reason,
            by=by,
            issuer=issuer,
            signature="",
        )
        raw = signer.sign(revocation_bytes(unsigned))
        signature = base64.b64encode(raw).decode("ascii")
        return unsigned.model_copy(update={"signature": signature}).model_dump(mode="json")

    return Revocation.model_validate(_append(store, REVOCATIONS_KEY, "revocations", signed))


def _append(
    store: CheckpointStore,
    key: str,
    field: str,
    make: Callable[[list[dict[str, Any]]], dict[str, Any]],
) -> dict[str, Any]:
    """Append `make(entries)` to the list `field` of record `key` (created if absent, else
    compare-and-set on the version read: of two writers racing, both land, each once)."""
    for _ in range(_CAS_ATTEMPTS):
        found = store.get_record(OPERATORS_NAMESPACE, key)
        entries = list(found.value.get(field, [])) if found is not None else []
        entry = make(entries)
        try:
            store.put_record(
                OPERATORS_NAMESPACE,
                key,
                {field: [*entries, entry]},
                expected_version=found.version if found is not None else None,
            )
        except RecordConflict:
            continue
        return entry
    raise RecordConflict(f"the store's {key} kept changing")


__all__ = [
    "ENROLMENTS_KEY",
    "OPERATORS_NAMESPACE",
    "REVOCATIONS_KEY",
    "enrolments",
    "list_enrolment",
    "revocations_of",
    "revoke",
    "stored_revocations",
]
