"""The payload store port: content-addressed bytes, written once, digest checked on read, listed
page by page with their stamps (what the payload collector sweeps, `payload_gc.py`); and its
stamped deletes (`StampedPayloads`), which let erasure delete a shared object safely."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from durable_graph.checkpoint import PayloadRef


class PayloadStore(Protocol):
    """Content-addressed bytes: written once, never overwritten, digest checked on read."""

    def put(self, data: bytes, content_type: str = "application/octet-stream") -> PayloadRef: ...

    def get(self, ref: PayloadRef) -> bytes:
        """Return the bytes; raise `PayloadCorrupted` if they do not match `ref.sha256`."""
        ...

    def delete(self, ref: PayloadRef) -> bool:
        """Destroy the bytes under `ref.sha256` (every stored version); True if there were
        any. Erasure's one exception to write-once: the caller checks that no live thread
        still refers to them."""
        ...

    def list_objects(self, after: str = "", limit: int = 1000) -> list[StoredObject]:
        """Up to `limit` content-addressed objects whose digest sorts after `after`, in digest
        order, each with its bytes and its stamp (`StoredObject`): one page of the whole store
        for the payload collector (`payload_gc.py`), read with one request where the backend
        can (one SELECT, one S3 ListObjectsV2 of up to 1,000 keys, one folder)."""
        ...

    def delete_idle(
        self, digests: Sequence[str], since: datetime, *, dry_run: bool = False
    ) -> list[str]:
        """Delete each object of `digests` (every stored version) unless it was put at `since`
        or later, as one step against concurrent puts where the backend can (a conditional
        DELETE, a rename aside, a lock; on S3 the versions listed before the stamp is read, so
        a put after that listing is a version it does not delete); return those deleted
        (`dry_run`: those it would delete, deleting nothing). In batches where the backend has
        them (one DELETE, S3 DeleteObjects of 1,000 versions)."""
        ...


@dataclass(frozen=True)
class StoredObject:
    """One object of a payload store as `PayloadStore.list_objects` lists it: its digest, the
    bytes it takes, and `stored_at`, the store's stamp of its last put (`StampedPayloads`: the
    file's mtime, PostgreSQL's `stored_at`, memory's map; on S3 the current version's
    `LastModified`, the bucket's clock, which the copy that stamps a put of bytes already there
    moves too). A stamp is a hint for the listing: `delete_idle` checks the store's own."""

    sha256: str
    size: int
    stored_at: datetime


IdleDelete = Literal["deleted", "in_use", "absent"]


@runtime_checkable
class StampedPayloads(Protocol):
    """Optional capability of a payload store, which every backend's has: each `put` stamps
    the object with the store's clock, a put of bytes already there included, and a delete
    can be conditional on no put since a time. That is what lets erasure delete a shared,
    content-addressed object without racing a step of another thread that stored the same
    bytes and has not committed yet (`payload_deletes.py`)."""

    def delete_if_idle(self, ref: PayloadRef, since: datetime) -> IdleDelete:
        """Delete the object (every stored version) unless it was put at `since` or later,
        as one step against concurrent puts: `deleted`, `in_use` (put since: left), or
        `absent`."""
        ...
