"""What an approval by an enrolled operator carries in the chain: its certificate and signature.

An operator is a person who decides from the CLI (or Python) as a named identity with a signing
key of their own (`operator_keys.py`). The ledger key (the one that signs the chain heads, kept
outside the store) *enrols* the operator by signing a certificate `{identity, public key}`; the
operator signs each approval `{thread_id, step, head_hash, decision, at}` (the suspended head it
decides). Both travel in the approval entry (`Approval.operator`, `docs/record-format.md` §15),
so `verify` and `verify --bundle` check them against the trusted ledger key, not the store.

These are the two documents and their exact signed bytes; they import nothing of the engine so
that the record model (`checkpoint.py`) can hold them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from durable_graph.canonical import canonical_bytes

# Each signed body names what it is, so that no signature of one kind (a head, a certificate,
# an approval) can be passed off as another.
CERTIFICATE_TYPE = "durable-graph-operator-certificate/1"
APPROVAL_TYPE = "durable-graph-operator-approval/1"


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
    """

    identity: str
    key_id: str
    algorithm: Literal["ed25519"] = "ed25519"
    pem: str
    issuer: str
    issued_at: str
    signature: str


class OperatorProof(_Document):
    """An approval's operator signature: over the suspended head it decides (`thread_id`,
    `step`, `head_hash`) and the approval's `decision` and `at`, by the certificate's key."""

    certificate: OperatorCertificate
    thread_id: str
    step: int
    head_hash: str
    signature: str


def certificate_bytes(certificate: OperatorCertificate) -> bytes:
    """Exactly what the ledger key signs: every field but the signature, with its type."""
    body = certificate.model_dump(mode="json", exclude={"signature"})
    return canonical_bytes({"type": CERTIFICATE_TYPE, **body})


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
    "OperatorCertificate",
    "OperatorProof",
    "approval_bytes",
    "certificate_bytes",
]
