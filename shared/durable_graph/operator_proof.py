"""What an approval by an enrolled operator carries in the chain: its certificate and signature.

An operator is a person who decides from the CLI (or Python) as a named identity with a signing
key of their own (`operator_keys.py`). The ledger key (the one that signs the chain heads, kept
outside the store) *enrols* the operator by signing a certificate `{identity, public key}`; the
operator signs each approval `{thread_id, step, head_hash, decision, at}` (the suspended head it
decides). Both travel in the approval entry (`Approval.operator`, `docs/record-format.md` §15),
so `verify` and `verify --bundle` check them against the trusted ledger key, not the store.

A certificate carries an expiry (`expires_at`), and the ledger key can revoke it later with a
signed `Revocation` kept in the store (`operator_revocations.py`): both are judged at the time
each approval was made, at decision time and by `verify`.

These are the documents and their exact signed bytes; they import nothing of the engine so
that the record model (`checkpoint.py`) can hold them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from durable_graph.canonical import canonical_bytes

# Each signed body names what it is, so that no signature of one kind (a head, a certificate,
# an approval) can be passed off as another.
CERTIFICATE_TYPE = "durable-graph-operator-certificate/1"
APPROVAL_TYPE = "durable-graph-operator-approval/1"
REVOCATION_TYPE = "durable-graph-operator-revocation/1"


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OperatorCertificate(_Document):
    """An operator's public key, bound to the identity it decides as by the ledger key.

    Attributes:
        identity: who the operator is (an email or user name), as approvals name them.
        key_id: the fingerprint of the operator's public key (`signing.fingerprint`).
        algorithm: of the operator's key: Ed25519.
        pem: the operator's public key (PEM SubjectPublicKeyInfo).
        issuer: the key id of the ledger key that signed this certificate.
        issued_at: when (ISO 8601, UTC).
        signature: the ledger key's signature over `certificate_bytes` (base64).
        expires_at: when it stops certifying (ISO 8601, UTC): an approval made at or after
            it is refused, and fails `verify`. None only in certificates issued before
            certificates expired, which are left out of the signed bytes (so their signatures
            still verify) and never expire (`operator list` says so).
    """

    identity: str
    key_id: str
    algorithm: Literal["ed25519"] = "ed25519"
    pem: str
    issuer: str
    issued_at: str
    signature: str
    # Left out of the dump when absent: a certificate from before expiry existed dumps (and
    # the records holding one hash) as before.
    expires_at: str | None = Field(default=None, exclude_if=lambda v: v is None)


class OperatorProof(_Document):
    """An approval's operator signature: over the suspended head it decides (`thread_id`,
    `step`, `head_hash`) and the approval's `decision` and `at`, by the certificate's key."""

    certificate: OperatorCertificate
    thread_id: str
    step: int
    head_hash: str
    signature: str


class Revocation(_Document):
    """The ledger key withdrawing an identity's certificates from a time on.

    It revokes every certificate for `identity` (compared case-insensitively) issued at or
    before `revoked_at`, or only the one for `key_id` when it names one: approvals made from
    `revoked_at` on are refused and fail `verify`; earlier ones stay valid. A certificate
    issued later (the person re-enrolled with a new key) is not revoked.

    The store keeps revocations as one numbered list (`operator_revocations.py`); each entry
    signs its place in it (`number`, and `previous`, the sha256 of the entry before), so an
    entry removed from the middle, reordered or edited fails its check.

    Attributes:
        number: 1 for the first revocation of the store, then 2, 3...
        previous: sha256 hex of the canonical bytes of entry `number - 1` (signature included);
            "" for the first.
        identity: whose certificates are revoked (as the certificates name them).
        key_id: only the certificate for this operator key (None: every one issued so far).
        revoked_at: from when (ISO 8601, UTC): the time the revocation was signed.
        reason: why (free text, required).
        by: who revoked (the account that ran `operator revoke`).
        issuer: the key id of the ledger key that signed it.
        signature: the ledger key's signature over `revocation_bytes` (base64).
    """

    number: int
    previous: str
    identity: str
    key_id: str | None = None
    revoked_at: str
    reason: str
    by: str
    issuer: str
    signature: str


def certificate_bytes(certificate: OperatorCertificate) -> bytes:
    """Exactly what the ledger key signs: every field but the signature, with its type (and
    without `expires_at` when it has none: a certificate from before expiry existed)."""
    body = certificate.model_dump(mode="json", exclude={"signature"})
    return canonical_bytes({"type": CERTIFICATE_TYPE, **body})


def revocation_bytes(revocation: Revocation) -> bytes:
    """Exactly what the ledger key signs for a revocation: every field but the signature."""
    body = revocation.model_dump(mode="json", exclude={"signature"})
    return canonical_bytes({"type": REVOCATION_TYPE, **body})


def approval_bytes(thread_id: str, step: int, head_hash: str, decision: str, at: str) -> bytes:
    """Exactly what the operator's key signs for one approval."""
    return canonical_bytes(
        {
            "type": APPROVAL_TYPE,
            "thread_id": thread_id,
            "step": step,
            "head_hash": head_hash,
            "decision": decision,
            "at": at,
        }
    )


__all__ = [
    "APPROVAL_TYPE",
    "CERTIFICATE_TYPE",
    "REVOCATION_TYPE",
    "OperatorCertificate",
    "OperatorProof",
    "Revocation",
    "approval_bytes",
    "certificate_bytes",
    "revocation_bytes",
]
