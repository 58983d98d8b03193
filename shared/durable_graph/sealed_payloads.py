"""The payload store of a store with encryption on: `backend.payloads` opens sealed payloads
transparently on `get` (a sealed payload names its thread in its header, `encryption.py`), so
every reader (hydrating io responses, snapshots, `ctx.load`) works unchanged, and a thread's
writer seals what it puts through `payloads_for(backend.payloads, thread_id)`.

The digest a `PayloadRef` carries, and the address the bytes live under, is that of the sealed
bytes: the raw store checks it on every read, `verify` and `export` read the raw bytes
(`raw_payloads`), and a sealed payload is never shared by two threads (its nonce is random),
so erasure may delete it without looking for other readers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from durable_graph.canonical import sha256_hex
from durable_graph.checkpoint import Change, PayloadRef
from durable_graph.encryption import (
    SealBroken,
    ThreadCipher,
    is_sealed,
    open_change,
    open_payload,
    payload_thread,
    plain_type,
    seal_payload,
    sealed_type,
)
from durable_graph.errors import DataKeyUnavailable, PayloadCorrupted
from durable_graph.keys import Keyring
from durable_graph.payload_batches import get_many
from durable_graph.ports.payload_store import PayloadStore, StoredObject


class SealingPayloadStore:
    """A `PayloadStore` over `raw` that opens sealed payloads with their thread's data key."""

    def __init__(self, raw: PayloadStore, keys: Keyring) -> None:
        self.raw = raw
        self.keys = keys

    def put(self, data: bytes, content_type: str = "application/octet-stream") -> PayloadRef:
        """Unsealed: no thread is known here (`payloads_for` seals for one)."""
        return self.raw.put(data, content_type)

    def get(self, ref: PayloadRef) -> bytes:
        return self._opened(ref, self.raw.get(ref))  # checked against ref.sha256: sealed bytes

    def get_many(self, refs: Sequence[PayloadRef]) -> list[bytes]:
        return [
            self._opened(ref, data)
            for ref, data in zip(refs, get_many(self.raw, refs), strict=True)
        ]

    def _opened(self, ref: PayloadRef, data: bytes) -> bytes:
        if not is_sealed(ref):
            return data
        try:
            thread_id = payload_thread(data)
        except SealBroken as exc:
            raise PayloadCorrupted(f"payload {ref.sha256}: {exc}") from exc
        return open_sealed(self.keys.cipher(thread_id), ref, data)

    def delete(self, ref: PayloadRef) -> bool:
        return self.raw.delete(ref)

    def list_objects(self, after: str = "", limit: int = 1000) -> list[StoredObject]:
        return self.raw.list_objects(after, limit)

    def delete_idle(
        self, digests: Sequence[str], since: datetime, *, dry_run: bool = False
    ) -> list[str]:
        return self.raw.delete_idle(digests, since, dry_run=dry_run)

    def for_thread(self, thread_id: str, cipher: ThreadCipher) -> ThreadPayloads:
        return ThreadPayloads(self, thread_id, cipher)

    def close(self) -> None:
        closer = getattr(self.raw, "close", None)
        if callable(closer):
            closer()


class ThreadPayloads:
    """One thread's view: what it puts is sealed with its data key."""

    def __init__(self, store: SealingPayloadStore, thread_id: str, cipher: ThreadCipher) -> None:
        self.store = store
        self.thread_id = thread_id
        self.cipher = cipher

    def put(self, data: bytes, content_type: str = "application/octet-stream") -> PayloadRef:
        box = seal_payload(self.cipher, self.thread_id, data, content_type)
        return self.store.raw.put(box, sealed_type(content_type))

    def save(self, data: bytes, content_type: str = "application/octet-stream") -> PayloadRef:
        """Sealed deterministically (`ThreadCipher.seal`): the same bytes saved again by this
        thread get the same ref (`ctx.save` is content-addressed: a re-run of a node stores
        nothing new), while another thread's key gives another object."""
        box = seal_payload(self.cipher, self.thread_id, data, content_type, deterministic=True)
        return self.store.raw.put(box, sealed_type(content_type))

    def get(self, ref: PayloadRef) -> bytes:
        if not is_sealed(ref):
            return self.store.raw.get(ref)
        return open_sealed(self.cipher, ref, self.store.raw.get(ref))

    def get_many(self, refs: Sequence[PayloadRef]) -> list[bytes]:
        datas = get_many(self.store.raw, refs)
        return [
            open_sealed(self.cipher, ref, data) if is_sealed(ref) else data
            for ref, data in zip(refs, datas, strict=True)
        ]

    def delete(self, ref: PayloadRef) -> bool:
        return self.store.raw.delete(ref)

    def list_objects(self, after: str = "", limit: int = 1000) -> list[StoredObject]:
        return self.store.raw.list_objects(after, limit)

    def delete_idle(
        self, digests: Sequence[str], since: datetime, *, dry_run: bool = False
    ) -> list[str]:
        return self.store.raw.delete_idle(digests, since, dry_run=dry_run)


def open_sealed(cipher: ThreadCipher, ref: PayloadRef, data: bytes) -> bytes:
    """The plaintext of the sealed payload `data` stored under `ref`."""
    try:
        return open_payload(cipher, data, plain_type(ref.content_type))
    except SealBroken as exc:
        raise PayloadCorrupted(f"payload {ref.sha256}: {exc}") from exc


def sealed_chunk(thread_id: str, change: Change, payloads: PayloadStore) -> bytes:
    """The chunk bytes (`{s, v}`, whose sha256 is `d`) of a sealed change, inline (`e`) or a
    sealed chunk, opened through the backend's sealing payload store (for readers of stored
    rows that do not go through `RecordStore`, e.g. the LangGraph saver's index)."""
    store = payloads.store if isinstance(payloads, ThreadPayloads) else payloads
    if not isinstance(store, SealingPayloadStore):
        raise DataKeyUnavailable(thread_id, "the store was opened without its key-encryption key")
    if change.e is not None:
        try:
            return open_change(change, store.keys.cipher(thread_id))
        except SealBroken as exc:
            raise PayloadCorrupted(f"a sealed value of {thread_id!r}: {exc}") from exc
    assert change.ref is not None
    data = store.get(change.ref)
    if sha256_hex(data) != change.d:
        raise PayloadCorrupted(f"chunk {change.ref.sha256} is not the one hashed")
    return data


def payloads_for(payloads: PayloadStore, thread_id: str, cipher: ThreadCipher) -> ThreadPayloads:
    """Where a thread with data key `cipher` puts its payloads."""
    if isinstance(payloads, SealingPayloadStore):
        return payloads.for_thread(thread_id, cipher)
    if isinstance(payloads, ThreadPayloads):
        return payloads.store.for_thread(thread_id, cipher)
    raise TypeError("encryption is on but the backend's payload store does not seal")


def raw_payloads(payloads: PayloadStore) -> PayloadStore:
    """The bytes as stored (what `verify` checks digests of, and `export` copies)."""
    if isinstance(payloads, SealingPayloadStore):
        return payloads.raw
    if isinstance(payloads, ThreadPayloads):
        return payloads.store.raw
    return payloads


__all__ = [
    "SealingPayloadStore",
    "ThreadPayloads",
    "open_sealed",
    "payloads_for",
    "raw_payloads",
    "sealed_chunk",
]
