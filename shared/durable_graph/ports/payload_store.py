"""The payload store port: content-addressed bytes, written once, digest checked on read;
and its stamped deletes (`StampedPayloads`), which let erasure delete a shared object safely."""

from __future__ import annotations

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
