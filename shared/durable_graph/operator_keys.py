"""Operator keys: a person deciding from the CLI or Python as a named identity that `verify`
checks against the ledger key, rather than taking the store's word for it.

The CLI otherwise decides as its OS account, and Python as whatever name its caller gives: both
as trustworthy as the store's write permissions, since whoever may run them may write rows
directly (`docs/approvals.md`, the trust model). An operator key closes that gap:

1. **Enrolment.** Whoever holds the ledger key (the key that signs chain heads; a key file
   beside the embedded store, KMS on AWS; never in the store's tables) signs a certificate
   `{identity, operator public key, expiry}` (`enrol`, `durable-graph operator enrol`). Write
   access to the store cannot make one.
2. **Deciding.** The operator decides with their private key and its certificate
   (`durable-graph resume --as NAME --operator-key KEY`, or `approver=OperatorKey.load(...)
   .approver(NAME)`): `sign_off` refuses a certificate this store's ledger key did not sign,
   or one naming someone else, before anything is written; it records the approval with the
   operator's signature over `{thread_id, step, head_hash, decision, at}` of the suspended head
   and the certificate (`operator_proof.OperatorProof`), method `operator_key`.
3. **Verifying.** The resume step hashes every approval with its proof (`Approval.operator`);
   `proof_problems` is what `verify` and `verify --bundle` check of each (check `signoff`): the
   certificate is signed by a trusted ledger key, names the identity the approval names, and
   its key made the approval's signature over the head the step decides.
4. **Expiry and revocation.** A certificate certifies until its `expires_at` (365 days by
   default), unless the ledger key revokes it first (`operator_registry.revoke`); both are
   judged at the approval's time, at decision time and by `verify` (`operator_validity.py`).

An operator's approvals count by identity (`operator:<identity>`, and by email when the
identity is one), so two keys enrolled for one person count once, and the requester rule
applies to the identity the certificate names.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import ValidationError

from durable_graph.approval_rule import Approver
from durable_graph.checkpoint import Actor, Approval, Checkpoint
from durable_graph.clock import Clock, iso
from durable_graph.errors import InvalidInput
from durable_graph.files import write_once
from durable_graph.operator_proof import (
    OperatorCertificate,
    OperatorProof,
    approval_bytes,
    certificate_bytes,
)
from durable_graph.operator_validity import (
    DEFAULT_VALIDITY,
    NO_REVOCATIONS,
    Revocations,
    invalidity,
    judged_at,
    verifies,
)
from durable_graph.signing import Ed25519Signer, PublicKey, Signer, key_of_pem

METHOD = "operator_key"
MAX_IDENTITY = 200


def operator_identity(identity: str) -> str:
    """An identity as a certificate names it (stripped); refused when empty or unprintable."""
    name = identity.strip()
    if not name or len(name) > MAX_IDENTITY or not name.isprintable():
        raise InvalidInput(
            f"an operator identity is an email or user name of 1..{MAX_IDENTITY} printable "
            f"characters, not {identity!r}",
            field="identity",
        )
    return name


def operator_key_of(identity: str) -> str:
    """The approval key of an operator identity: approvals with one key are one person."""
    return f"operator:{identity.strip().lower()}"


def certificate_path(key_path: Path) -> Path:
    """Where a key's certificate is kept by default: `alice.key` -> `alice.cert.json`."""
    return key_path.with_suffix(".cert.json")


# ------------------------------------------------------------------------------ enrolment


def enrol(
    signer: Signer,
    identity: str,
    public_key: PublicKey,
    clock: Clock,
    expires_at: datetime | None = None,
) -> OperatorCertificate:
    """The certificate binding `public_key` (an operator's Ed25519 key) to `identity`, signed
    by the ledger key `signer`, certifying until `expires_at` (default: `DEFAULT_VALIDITY`,
    365 days, from now)."""
    if public_key.algorithm != "ed25519":
        raise InvalidInput("an operator key is an Ed25519 key", field="public_key")
    now = clock.now()
    until = expires_at or now + DEFAULT_VALIDITY
    if until <= now:
        raise InvalidInput(f"expires_at {iso(until)} is not later than now", field="--expires")
    unsigned = OperatorCertificate(
        identity=operator_identity(identity),
        key_id=public_key.key_id,
        pem=public_key.pem,
        issuer=signer.public_key().key_id,
        issued_at=iso(now),
        signature="",
        expires_at=iso(until),
    )
    raw = signer.sign(certificate_bytes(unsigned))
    return unsigned.model_copy(update={"signature": base64.b64encode(raw).decode("ascii")})


def new_key_file(path: Path) -> ed25519.Ed25519PrivateKey:
    """Create an operator's private key at `path` (mode 0600); refused if something is there."""
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    if not write_once(path, pem, private_dir=True):
        raise InvalidInput(f"{path} exists already: not overwritten", field="--key")
    return key


def read_private_key(path: Path, flag: str = "--operator-key") -> ed25519.Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise InvalidInput(
            f"no operator key at {path} (enrol one: durable-graph operator enrol NAME --key "
            f"{path})",
            field=flag,
        ) from None
    except (OSError, ValueError, TypeError) as exc:
        raise InvalidInput(
            f"{path} is not an unencrypted PEM private key: {exc}", field=flag
        ) from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise InvalidInput(f"{path} does not hold an Ed25519 private key", field=flag)
    return key


def read_public_key(path: Path) -> PublicKey:
    try:
        public = key_of_pem(path.read_text(encoding="ascii"))
    except FileNotFoundError:
        raise InvalidInput(f"no public key at {path}", field="--public-key") from None
    except (OSError, ValueError, TypeError) as exc:
        raise InvalidInput(f"{path} is not a PEM public key: {exc}", field="--public-key") from None
    if public.algorithm != "ed25519":
        raise InvalidInput(f"{path} is not an Ed25519 public key", field="--public-key")
    return public


def write_certificate(certificate: OperatorCertificate, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(certificate.model_dump_json(indent=1) + "\n", encoding="utf-8")


def read_certificate(path: Path) -> OperatorCertificate:
    try:
        return OperatorCertificate.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise InvalidInput(
            f"no operator certificate at {path} (the ledger key's holder makes it: "
            "durable-graph operator enrol)",
            field="--certificate",
        ) from None
    except (OSError, ValidationError, json.JSONDecodeError) as exc:
        raise InvalidInput(
            f"{path} is not an operator certificate: {exc}", field="--certificate"
        ) from None


# ------------------------------------------------------------------------------ deciding


class OperatorKey:
    """An operator's private key with its certificate: signs the approvals they make.

    Example::

        key = OperatorKey.load(Path("alice.key"))  # and alice.cert.json beside it
        graph.resume("pay-1", values={"approved": True}, as_node="approve_payment",
                     approver=key.approver("alice@example.com"))
    """

    def __init__(self, private: ed25519.Ed25519PrivateKey, certificate: OperatorCertificate):
        public = Ed25519Signer(private).public_key()
        if public.key_id != certificate.key_id:
            raise InvalidInput(
                f"the certificate for {certificate.identity} is for key {certificate.key_id}, "
                f"not this key ({public.key_id})",
                field="--certificate",
            )
        self._private = private
        self._certificate = certificate

    @classmethod
    def load(cls, key_path: Path, certificate: Path | None = None) -> OperatorKey:
        """The key at `key_path` and its certificate (default `certificate_path(key_path)`)."""
        private = read_private_key(key_path)
        return cls(private, read_certificate(certificate or certificate_path(key_path)))

    @property
    def certificate(self) -> OperatorCertificate:
        return self._certificate

    def prove(
        self, thread_id: str, step: int, head_hash: str, decision: str, at: str
    ) -> OperatorProof:
        raw = self._private.sign(approval_bytes(thread_id, step, head_hash, decision, at))
        return OperatorProof(
            certificate=self._certificate,
            thread_id=thread_id,
            step=step,
            head_hash=head_hash,
            signature=base64.b64encode(raw).decode("ascii"),
        )

    def approver(self, identity: str | None = None) -> Approver:
        """The `Approver` deciding as the certificate's identity; `identity` (the CLI's `--as`)
        must be the one the certificate names, or this is refused."""
        named = self._certificate.identity
        if identity is not None and operator_identity(identity).lower() != named.lower():
            raise InvalidInput(
                f"the operator key's certificate names {named!r}, not {identity.strip()!r}: "
                "--as decides only as the identity the ledger key enrolled for that key",
                field="--as",
            )
        return Approver(
            key=operator_key_of(named),
            actor=Actor(kind="human", id=f"operator:{named}"),
            email=named if "@" in named else None,
            method=METHOD,
            aliases=frozenset({named}),
            operator=self,
        )


# ------------------------------------------------------------------------------ checking


def certificate_problem(
    certificate: OperatorCertificate, trusted: Mapping[str, PublicKey]
) -> str | None:
    """Why `certificate` is not one a trusted ledger key enrolled (None: it is)."""
    who = certificate.identity
    try:
        own = key_of_pem(certificate.pem).key_id
    except (ValueError, TypeError):
        return f"the certificate for {who} holds no readable public key"
    if own != certificate.key_id:
        return f"the certificate for {who} names key {certificate.key_id} but holds {own}"
    issuer = trusted.get(certificate.issuer)
    if issuer is None:
        return (
            f"the certificate for {who} was issued by key {certificate.issuer}, not a trusted "
            f"ledger key ({', '.join(sorted(trusted)) or 'none'}): the operator is not enrolled"
        )
    if not verifies(issuer, certificate_bytes(certificate), certificate.signature):
        return f"the certificate for {who} is not signed by the ledger key {certificate.issuer}"
    return None


def enrolment_refusal(
    approver: Approver, signer: Signer | None, at: str, revocations: Revocations = NO_REVOCATIONS
) -> str | None:
    """Why `sign_off` refuses an operator approver deciding at `at` (None: it may decide): a
    certificate the store's ledger key (`signer`) did not sign, an approver naming someone its
    certificate does not, a certificate expired or revoked by then, or a revocation list
    someone altered (`operator_validity.py`)."""
    if approver.operator is None:
        if approver.method == METHOD:
            return "an operator_key approver needs the operator's key (OperatorKey.approver)"
        return None
    certificate = approver.operator.certificate
    if approver.key != operator_key_of(certificate.identity) or approver.method != METHOD:
        return (
            f"approver {approver.actor.id} is not the identity its operator certificate names "
            f"({certificate.identity})"
        )
    if signer is None:
        return "this store has no ledger key to check operator certificates against"
    ledger = signer.public_key()  # the store's ledger key (asked only for an operator)
    problem = certificate_problem(certificate, {ledger.key_id: ledger})
    if problem is not None:
        return problem
    if revocations.problems:
        return (
            "the store's list of revoked operator certificates was altered ("
            + "; ".join(revocations.problems)
            + "): no operator may decide until the ledger key's holder repairs it"
        )
    refusal = invalidity(certificate, at, revocations)
    return f"{refusal}: it no longer certifies operator decisions" if refusal else None


def proof_problems(
    record: Checkpoint,
    trusted: Mapping[str, PublicKey] | None,
    revocations: Revocations | None = None,
) -> list[str]:
    """What is wrong with the operator signatures of a record's approvals (check `signoff`).
    Without trusted keys (a store with no ledger key) certificates are not checked, as head
    signatures are not; the operator's own signature still is. With `revocations` (the
    store's or the bundle's list, checked), each certificate is judged at the approval's time
    (`operator_validity.judged_at`), and a problem of the list is one of every record with an
    operator approval."""
    if record.signoff is None:
        return []
    found: list[str] = []
    approvals = record.signoff.approvals
    for index, approval in enumerate(approvals, start=1):
        problem = _approval_problem(record, approval, trusted)
        if problem is None and approval.operator is not None and revocations is not None:
            at = judged_at(record, approval, last=index == len(approvals))
            problem = invalidity(approval.operator.certificate, at, revocations)
        if problem is not None:
            found.append(f"approval {index} ({approval.actor.id}): {problem}")
    if revocations is not None and any(a.operator is not None for a in approvals):
        found.extend(f"the revocation list: {p}" for p in revocations.problems)
    return found


def _approval_problem(
    record: Checkpoint, approval: Approval, trusted: Mapping[str, PublicKey] | None
) -> str | None:
    proof = approval.operator
    if proof is None:
        return "its method is operator_key but it carries no signature" if (
            approval.method == METHOD
        ) else None  # fmt: skip
    certificate = proof.certificate
    if approval.method != METHOD:
        return f"it carries an operator signature but its method is {approval.method!r}"
    named = certificate.identity
    if approval.key != operator_key_of(named) or approval.actor.id != f"operator:{named}":
        return f"it names {approval.actor.id}, its certificate names {named}"
    if trusted is not None:
        problem = certificate_problem(certificate, trusted)
        if problem is not None:
            return problem
    subgraph = record.thread_id.startswith(f"{proof.thread_id[:150]}|")  # handed down
    decided = (proof.thread_id, proof.step, proof.head_hash)
    if not subgraph and decided != (record.thread_id, record.step - 1, record.prev_hash):
        return (
            f"its signature is over step {proof.step} of {proof.thread_id!r}, not the head "
            f"this step decides (step {record.step - 1})"
        )
    signed = approval_bytes(*decided, approval.decision, approval.at)
    operator = PublicKey(key_id=certificate.key_id, algorithm="ed25519", pem=certificate.pem)
    if not verifies(operator, signed, proof.signature):
        return f"its signature was not made by the key enrolled for {named}"
    return None


__all__ = [
    "METHOD",
    "OperatorKey",
    "certificate_path",
    "certificate_problem",
    "enrol",
    "enrolment_refusal",
    "new_key_file",
    "operator_identity",
    "operator_key_of",
    "proof_problems",
    "read_certificate",
    "read_private_key",
    "read_public_key",
    "write_certificate",
]
