"""Thread data keys wrapped by an AWS KMS key (envelope encryption; `durable_graph.keys`).

A new thread's data key comes from one `GenerateDataKey` call (AES_256): KMS returns the key in
the clear (used, then kept only in memory) and wrapped under the KMS key (stored in the thread's
`key#data` item). Reading a thread in a fresh process is one `Decrypt` of the wrapped key. The
thread id is the encryption context of both calls, so a wrapped key copied onto another thread
does not unwrap, and every use of a thread's key is a CloudTrail event naming the thread.
Access to values is thus governed by `kms:Decrypt` on the key, apart from the table and bucket.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from durable_graph.backends.aws.errors import error_code, translate
from durable_graph.errors import DataKeyUnavailable

CONTEXT_KEY = "durable-graph:thread"
# KMS refusing to unwrap for a reason no retry fixes: no permission, a disabled or deleted
# key, a wrapped key that is not this key's or not this thread's.
_REFUSED = frozenset(
    {
        "AccessDeniedException",
        "DisabledException",
        "IncorrectKeyException",
        "InvalidCiphertextException",
        "KMSInvalidStateException",
        "NotFoundException",
    }
)


class KmsKeyWrapper:
    """`KeyWrapper` over a symmetric KMS key (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT)."""

    def __init__(self, kms_client: Any, key_id: str) -> None:
        self._kms = kms_client
        self._key_id = key_id

    @property
    def kek_id(self) -> str:
        return f"kms:{self._key_id}"

    def new_key(self, thread_id: str) -> tuple[bytes, bytes]:
        try:
            response = self._kms.generate_data_key(
                KeyId=self._key_id,
                KeySpec="AES_256",
                EncryptionContext={CONTEXT_KEY: thread_id},
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "KMS GenerateDataKey") from exc
        return bytes(response["Plaintext"]), bytes(response["CiphertextBlob"])

    def unwrap(self, thread_id: str, wrapped: bytes) -> bytes:
        try:
            response = self._kms.decrypt(
                KeyId=self._key_id,
                CiphertextBlob=wrapped,
                EncryptionContext={CONTEXT_KEY: thread_id},
            )
        except ClientError as exc:
            if error_code(exc) in _REFUSED:
                raise DataKeyUnavailable(
                    thread_id, f"KMS key {self._key_id} refuses to unwrap its data key: {exc}"
                ) from exc
            raise translate(exc, "KMS Decrypt") from exc
        except BotoCoreError as exc:
            raise translate(exc, "KMS Decrypt") from exc
        return bytes(response["Plaintext"])


__all__ = ["CONTEXT_KEY", "KmsKeyWrapper"]
