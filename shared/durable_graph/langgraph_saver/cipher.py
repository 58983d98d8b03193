"""Per-thread data keys: every value LangGraph's serializer produces is stored encrypted, so that
`delete_thread` can erase it from an append-only ledger by destroying one key (crypto-shredding,
DESIGN.md §4) while every record, hash and signature stays in place and still verifies.

A stored value is the string `"<serde type>:<base64(nonce || AES-256-GCM ciphertext)>"`; the
serde type is bound to the ciphertext as associated data, so neither can be swapped.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from durable_graph.errors import CorruptRecord

NONCE_BYTES = 12
KEY_BYTES = 32

Typed = tuple[str, bytes]


def new_key() -> str:
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


class ThreadCipher:
    """Encrypts and decrypts the typed values of one thread generation."""

    def __init__(self, key: str) -> None:
        self._aead = AESGCM(base64.b64decode(key))

    def seal(self, typed: Typed) -> str:
        kind, data = typed
        nonce = os.urandom(NONCE_BYTES)
        box = self._aead.encrypt(nonce, data, kind.encode())
        return f"{kind}:{base64.b64encode(nonce + box).decode('ascii')}"

    def open(self, sealed: str, *, where: tuple[str, int]) -> Typed:
        kind, _, encoded = sealed.rpartition(":")
        try:
            raw = base64.b64decode(encoded, validate=True)
            return kind, self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], kind.encode())
        except (ValueError, InvalidTag) as exc:
            raise CorruptRecord(
                where[0], where[1], "a stored LangGraph value does not decrypt with its key"
            ) from exc


__all__ = ["ThreadCipher", "Typed", "new_key"]
