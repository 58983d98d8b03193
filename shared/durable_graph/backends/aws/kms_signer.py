"""Ledger signer backed by an asymmetric AWS KMS key (ECC_NIST_P256, SIGN_VERIFY).

The private half never leaves KMS, so nobody who can write the table — not even the functions'
own role without `kms:Sign` — can produce a chain-head signature, and every signature is a
CloudTrail event. Verification needs only the public key, which is fetched once per container
and exported into audit bundles, so `verify --bundle` works offline with no AWS access.
"""

from __future__ import annotations

import hashlib
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from cryptography.hazmat.primitives import serialization

from durable_graph.errors import TransientError
from durable_graph.signing import PublicKey, fingerprint

RAW_LIMIT = 4096


class KmsSigner:
    """`Signer` over KMS: ECDSA with SHA-256 on the digest of the message (one Sign call)."""

    def __init__(self, kms_client: Any, key_id: str) -> None:
        self._kms = kms_client
        self._key_id = key_id
        self._public: PublicKey | None = None

    def public_key(self) -> PublicKey:
        if self._public is None:
            try:
                der = self._kms.get_public_key(KeyId=self._key_id)["PublicKey"]
            except (ClientError, BotoCoreError) as exc:
                raise TransientError(f"KMS GetPublicKey failed: {exc}") from exc
            public = serialization.load_der_public_key(der)
            pem = public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ).decode("ascii")
            self._public = PublicKey(
                key_id=fingerprint(der), algorithm="ecdsa-p256-sha256", pem=pem
            )
        return self._public

    def sign(self, message: bytes) -> bytes:
        # Signed heads are a few hundred bytes: send them RAW (KMS hashes with SHA-256). Only a
        # body over KMS's 4 KB RAW limit is sent as its SHA-256 DIGEST; both verify as
        # ECDSA-SHA256 over the original message.
        raw = len(message) <= RAW_LIMIT
        try:
            response = self._kms.sign(
                KeyId=self._key_id,
                Message=message if raw else hashlib.sha256(message).digest(),
                MessageType="RAW" if raw else "DIGEST",
                SigningAlgorithm="ECDSA_SHA_256",
            )
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"KMS Sign failed: {exc}") from exc
        signature: bytes = response["Signature"]
        return signature
