"""The KMS ledger signer on moto: its signatures verify offline with the exported public key,
and a signed head made with it is checked by the same verifier as the local key file's."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from durable_graph.backends.aws.kms_signer import KmsSigner
from durable_graph.signing import make_signature, verify_signature
from tests.helpers import checkpoint


@pytest.fixture
def kms() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("kms", region_name="us-east-1")


def test_kms_signature_verifies_with_the_public_key_only(kms: Any) -> None:
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    signer = KmsSigner(kms, key)
    public = signer.public_key()
    assert public.algorithm == "ecdsa-p256-sha256" and len(public.key_id) == 32
    message = b'{"head_hash":"abc","step":3}'
    signature = signer.sign(message)
    assert verify_signature(public, message, signature)
    assert not verify_signature(public, message.replace(b"3", b"4"), signature)


def test_signed_head_from_kms(kms: Any) -> None:
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    other = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    head = checkpoint("k1", 0, status="completed")
    signed = make_signature(KmsSigner(kms, key), head, "2026-01-01T00:00:00.000000Z")
    public = KmsSigner(kms, key).public_key()
    assert signed.key_id == public.key_id
    assert verify_signature(public, signed.signed_bytes(), base64.b64decode(signed.signature))
    assert KmsSigner(kms, other).public_key().key_id != public.key_id
