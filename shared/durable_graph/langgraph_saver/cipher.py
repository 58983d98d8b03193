"""Per-thread data keys: every value LangGraph's serializer produces is stored encrypted, so that
`delete_thread` can erase it from an append-only ledger by destroying one key (crypto-shredding,
DESIGN.md §4) while every record, hash and signature stays in place and still verifies.

A stored value is the string `"<serde type>:<base64(nonce || AES-256-GCM ciphertext)>"`; the
serde type is bound to the ciphertext as associated data, so neither can be swapped. The AES-GCM
itself is the engine's (`durable_graph.encryption.ThreadCipher`): one encryption path for the
saver and the ledger. The saver's key lives in the thread manifest (`manifest.py`); with
encryption at rest on for the store (`durable_graph.keys`), the ledger threads it writes are
sealed again under a data key wrapped by the store's key-encryption key.
"""

from __future__ import annotations

import base64

from durable_graph.encryption import SealBroken, new_data_key
from durable_graph.encryption import ThreadCipher as DataCipher
from durable_graph.errors import CorruptRecord

Typed = tuple[str, bytes]


def new_key() -> str:
    return base64.b64encode(new_data_key()).decode("ascii")


class ThreadCipher:
    """Encrypts and decrypts the typed values of one thread generation."""

    def __init__(self, key: str) -> None:
        self._cipher = DataCipher(base64.b64decode(key))

    def seal(self, typed: Typed) -> str:
        kind, data = typed
        return f"{kind}:{self._cipher.seal_text(data, kind.encode())}"

    def open(self, sealed: str, *, where: tuple[str, int]) -> Typed:
        kind, _, encoded = sealed.rpartition(":")
        try:
            return kind, self._cipher.open_text(encoded, kind.encode())
        except SealBroken as exc:
            raise CorruptRecord(
                where[0], where[1], "a stored LangGraph value does not decrypt with its key"
            ) from exc


__all__ = ["ThreadCipher", "Typed", "new_key"]
