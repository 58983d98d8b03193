"""Signed chain heads: what someone with write access to the store cannot forge.

Anyone who can write the checkpoint table can recompute a whole hash chain. They cannot sign:
the ledger key lives outside the store (a key file in embedded mode, a KMS key on AWS). When a
thread suspends, completes or fails, and on demand, the engine signs
`{thread_id, step, head_hash, step_count, status, key_id, algorithm, signed_at}` and stores the
signature as a small record `sig#<step>` beside the thread. A group commit signs the heads it
settles together, once, over the root of a hash tree of those statements, and each record keeps
its path to that root (`head_batches.py`). Because the signed body names the
step count, deleting the tail of a chain is caught by the newest signature.

`Signer` is a Protocol so the AWS KMS signer plugs in: it needs `public_key()` and `sign()`.
Verification needs only the public key and `verify_signature`, so a bundle verifies offline.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from pydantic import (
    BaseModel,
    ConfigDict,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)

from durable_graph.canonical import canonical_bytes
from durable_graph.checkpoint import Checkpoint
from durable_graph.clock import Clock, iso
from durable_graph.errors import InvalidInput, RecordConflict
from durable_graph.files import write_once
from durable_graph.head_batches import root_of, tree
from durable_graph.ports.checkpoint_store import CheckpointStore
from durable_graph.ports.commit_writes import RecordWrite

log = logging.getLogger("durable_graph.signing")

SIGNED_STATUSES: frozenset[str] = frozenset({"suspended", "completed", "failed"})
SIG_PREFIX = "sig#"
KEY_FILE = Path("keys") / "ledger-ed25519.pem"
# The embedded key file's path, when it is kept outside the store's folder (`ledger_key_file`).
LEDGER_KEY_ENV = "DURABLE_GRAPH_LEDGER_KEY"
Algorithm = Literal["ed25519", "ecdsa-p256-sha256"]


class PublicKey(BaseModel):
    """Public key material a verifier needs, with its fingerprint as the key id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str
    algorithm: Algorithm
    pem: str


class HeadBatch(BaseModel):
    """Where a head signed with others sits in their tree (`head_batches.py`): the sibling
    hashes from its statement up to the root the signature is over."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: list[tuple[Literal["l", "r"], str]]


class HeadSignature(BaseModel):
    """One signed chain head, stored as the record `sig#<step>` of its thread."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    thread_id: str
    step: int
    head_hash: str
    step_count: int
    status: str
    key_id: str
    algorithm: Algorithm
    signed_at: str
    signature: str
    batch: HeadBatch | None = None  # absent: the signature is over this head alone

    @model_serializer(mode="wrap")
    def _without_batch(self, dump: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A head signed alone dumps as before batches existed (no `batch: null`): its record,
        a bundle and an older verifier see the same document."""
        document: dict[str, Any] = dump(self)
        if self.batch is None:
            document.pop("batch", None)
        return document

    def signed_bytes(self) -> bytes:
        """The head's statement: canonical JSON of every field but the signature (and the
        batch path), what was signed, or, in a batch, the leaf of the tree that was."""
        return canonical_bytes(self.model_dump(mode="json", exclude={"signature", "batch"}))

    def signed_message(self) -> bytes | None:
        """The bytes the signature is over: the statement, or the root of its batch (None
        when the batch path is malformed)."""
        statement = self.signed_bytes()
        if self.batch is None:
            return statement
        root = root_of(statement, self.batch.path)
        return None if root is None else batch_message(root, self.key_id, self.algorithm)


def batch_message(root: str, key_id: str, algorithm: str) -> bytes:
    """What a batch's signature is over: its root, with the key that signs it (a statement
    names a thread, so no statement is ever this message)."""
    return canonical_bytes({"algorithm": algorithm, "heads_root": root, "key_id": key_id})


class Signer(Protocol):
    """Signs chain heads. Implementations: a local Ed25519 key file, AWS KMS."""

    def public_key(self) -> PublicKey: ...

    def sign(self, message: bytes) -> bytes: ...


def fingerprint(spki_der: bytes) -> str:
    """Key id: sha256 of the DER SubjectPublicKeyInfo (first 32 hex digits)."""
    return hashlib.sha256(spki_der).hexdigest()[:32]


def _public_of(key: ed25519.Ed25519PrivateKey) -> PublicKey:
    public = key.public_key()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
    return PublicKey(key_id=fingerprint(der), algorithm="ed25519", pem=pem)


class Ed25519Signer:
    """An in-memory Ed25519 key (tests, the memory backend)."""

    def __init__(self, key: ed25519.Ed25519PrivateKey) -> None:
        self._key = key
        self._public = _public_of(key)

    @classmethod
    def generate(cls) -> Ed25519Signer:
        return cls(ed25519.Ed25519PrivateKey.generate())

    def public_key(self) -> PublicKey:
        return self._public

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


class FileSigner:
    """The embedded mode's ledger key: a PEM file created on first use with 0600 permissions.

    Creation is atomic (temp file, then a hard link that fails if another process won), so two
    processes starting at once agree on one key.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._signer: Ed25519Signer | None = None

    def _load(self) -> Ed25519Signer:
        with self._lock:
            if self._signer is None:
                if not self.path.exists():
                    _create_key_file(self.path)
                key = serialization.load_pem_private_key(self.path.read_bytes(), password=None)
                if not isinstance(key, ed25519.Ed25519PrivateKey):
                    raise ValueError(f"{self.path} does not hold an Ed25519 private key")
                self._signer = Ed25519Signer(key)
            return self._signer

    def public_key(self) -> PublicKey:
        return self._load().public_key()

    def sign(self, message: bytes) -> bytes:
        return self._load().sign(message)


def ledger_key_file(folder: Path) -> Path:
    """The embedded ledger key of the store in `folder`: `$DURABLE_GRAPH_LEDGER_KEY` if set (a
    file outside the folder, so a copy or backup of the folder carries no key:
    `docs/approvals.md`), else `keys/ledger-ed25519.pem` in it. Refused while the folder still
    holds a key and the variable names another file: one key signs a store (move it first)."""
    outside = os.environ.get(LEDGER_KEY_ENV, "").strip()
    inside = folder / KEY_FILE
    if not outside:
        return inside
    path = Path(outside).expanduser().resolve()
    if path != inside.resolve() and inside.exists():
        raise InvalidInput(
            f"{LEDGER_KEY_ENV} names {path}, but the store's folder still holds its ledger key "
            f"{inside}: move that file there (mv {inside} {path}), so one key signs this store",
            field=LEDGER_KEY_ENV,
        )
    return path


def _create_key_file(path: Path) -> None:
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_once(path, pem, private_dir=True)  # mode 0600; a racing creator's key wins whole


def verify_signature(key: PublicKey, message: bytes, signature: bytes) -> bool:
    """True iff `signature` over `message` was made by the private half of `key`."""
    public = serialization.load_pem_public_key(key.pem.encode("ascii"))
    try:
        if key.algorithm == "ed25519" and isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, message)
            return True
        if key.algorithm == "ecdsa-p256-sha256" and isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
            return True
    except InvalidSignature:
        return False
    return False


def key_of_pem(pem: str) -> PublicKey:
    """A `PublicKey` (with its fingerprint) from a PEM public key, e.g. one pinned by a user."""
    public = serialization.load_pem_public_key(pem.encode("ascii"))
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    algorithm: Algorithm = (
        "ed25519" if isinstance(public, ed25519.Ed25519PublicKey) else ("ecdsa-p256-sha256")
    )
    return PublicKey(key_id=fingerprint(der), algorithm=algorithm, pem=pem)


def make_signature(signer: Signer, checkpoint: Checkpoint, signed_at: str) -> HeadSignature:
    return HeadSignature.model_validate(signature_document(signer, checkpoint, signed_at))


def _statement(public: PublicKey, checkpoint: Checkpoint, signed_at: str) -> dict[str, Any]:
    """The head of `checkpoint` as `HeadSignature.signed_bytes` states it, as plain data (two
    pydantic models, two dumps and a copy around one signature were half of a head
    signature's time)."""
    return {
        "thread_id": checkpoint.thread_id,
        "step": checkpoint.step,
        "head_hash": checkpoint.hash,
        "step_count": checkpoint.step + 1,
        "status": checkpoint.status,
        "key_id": public.key_id,
        "algorithm": public.algorithm,
        "signed_at": signed_at,
    }


def signature_document(signer: Signer, checkpoint: Checkpoint, signed_at: str) -> dict[str, Any]:
    """The signed head of `checkpoint` as the JSON document its record stores: its statement
    and the signature over it."""
    document = _statement(signer.public_key(), checkpoint, signed_at)
    raw = signer.sign(canonical_bytes(document))
    document["signature"] = base64.b64encode(raw).decode("ascii")
    return document


def batch_documents(
    signer: Signer, checkpoints: Sequence[Checkpoint], signed_at: str
) -> list[dict[str, Any]]:
    """The signed heads of `checkpoints` as their records' documents, under one signature
    over the root of their statements' tree (`head_batches.py`), each with its path.
    `batch_signatures` asks for two or more: a head settled alone is signed alone
    (`signature_document`), its record without a batch."""
    public = signer.public_key()
    documents = [_statement(public, checkpoint, signed_at) for checkpoint in checkpoints]
    root, paths = tree([canonical_bytes(document) for document in documents])
    raw = signer.sign(batch_message(root, public.key_id, public.algorithm))
    signature = base64.b64encode(raw).decode("ascii")
    for document, path in zip(documents, paths, strict=True):
        document["signature"] = signature
        document["batch"] = {"path": [list(step) for step in path]}
    return documents


def batch_signatures(
    signer: Signer | None, checkpoints: Iterable[Checkpoint], clock: Clock
) -> dict[tuple[str, int], RecordWrite]:
    """The head signatures of those of `checkpoints` that suspend, complete or fail, made
    together before their commits (a group commit's batch), by (thread, step): each commit
    writes its own (`FollowUps.prepare`). A signing failure is logged and signs none of them
    here: each commit then signs its head alone, as ever (`signature_write`)."""
    settled = [c for c in checkpoints if c.status in SIGNED_STATUSES]
    if signer is None or len(settled) < 2:
        return {}
    try:
        documents = batch_documents(signer, settled, iso(clock.now()))
    except Exception:
        log.exception("could not sign a batch of %d chain heads", len(settled))
        return {}
    return {
        (c.thread_id, c.step): RecordWrite(f"{SIG_PREFIX}{c.step}", document)
        for c, document in zip(settled, documents, strict=True)
    }


def sign_head(
    store: CheckpointStore, signer: Signer, checkpoint: Checkpoint, clock: Clock
) -> HeadSignature:
    """Sign `checkpoint` as a chain head and store it; idempotent (the first signature stays)."""
    key = f"{SIG_PREFIX}{checkpoint.step}"
    signature = make_signature(signer, checkpoint, iso(clock.now()))
    try:
        # Create iff absent: a signature is never replaced, even by a signer that disagrees
        # with it (a mismatch is evidence for `verify`, not something to paper over).
        store.put_record(
            checkpoint.thread_id,
            key,
            signature.model_dump(mode="json"),
            expected_version=None,
        )
        return signature
    except RecordConflict as conflict:
        existing = conflict.current
    parsed = parse_signature(existing.value) if existing is not None else None
    if parsed is None:
        raise InvalidInput(f"{key} of {checkpoint.thread_id!r} exists but is not a signature")
    return parsed


def sign_if_settled(
    store: CheckpointStore, signer: Signer | None, checkpoint: Checkpoint, clock: Clock
) -> None:
    """The engine's hook after a commit: sign heads that suspend, complete or fail.

    A signing failure (an unreadable key file, a KMS outage) must not stop the thread: it is
    logged, and `verify` reports the unsigned head until `durable-graph sign` is run.
    """
    if signer is None or checkpoint.status not in SIGNED_STATUSES:
        return
    try:
        sign_head(store, signer, checkpoint, clock)
    except Exception:
        log.exception(
            "could not sign the chain head",
            extra={"thread_id": checkpoint.thread_id, "step": checkpoint.step},
        )


def signature_write(
    signer: Signer | None, checkpoint: Checkpoint, clock: Clock
) -> RecordWrite | None:
    """The head signature of a step that suspends, completes or fails, as a record its commit
    writes (created iff absent, like `sign_head`'s), made before the commit so it costs no
    request of its own. A signing failure is logged and leaves the head unsigned, as in
    `sign_if_settled`."""
    if signer is None or checkpoint.status not in SIGNED_STATUSES:
        return None
    try:
        document = signature_document(signer, checkpoint, iso(clock.now()))
    except Exception:
        log.exception(
            "could not sign the chain head",
            extra={"thread_id": checkpoint.thread_id, "step": checkpoint.step},
        )
        return None
    return RecordWrite(f"{SIG_PREFIX}{checkpoint.step}", document)


def parse_signature(value: dict[str, Any]) -> HeadSignature | None:
    try:
        return HeadSignature.model_validate(value)
    except ValidationError:
        return None


def decode_signature(signature: HeadSignature) -> bytes | None:
    try:
        return base64.b64decode(signature.signature, validate=True)
    except ValueError:
        return None


__all__ = [
    "KEY_FILE",
    "LEDGER_KEY_ENV",
    "SIGNED_STATUSES",
    "SIG_PREFIX",
    "Ed25519Signer",
    "FileSigner",
    "HeadBatch",
    "HeadSignature",
    "PublicKey",
    "Signer",
    "batch_documents",
    "batch_message",
    "batch_signatures",
    "fingerprint",
    "key_of_pem",
    "ledger_key_file",
    "make_signature",
    "sign_head",
    "sign_if_settled",
    "signature_document",
    "signature_write",
    "verify_signature",
]
