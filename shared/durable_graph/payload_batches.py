"""Reading many payloads at once, in the way each payload store does it fastest.

A cold read of a long thread fetches every segment its snapshot names (`backends/snapshots.py`).
A store that can fetch several payloads in one request, or whose reads cost less than a thread
hand-off (a local folder, memory), says so with a `get_many(refs)` method: the folder reads its
files one after another, PostgreSQL answers one query. Any other store (S3, where a GET is
latency-bound) is read a few payloads at a time from a thread pool. Every payload is checked
against its digest either way (`PayloadCorrupted`), as `get` does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from durable_graph.checkpoint import PayloadRef
from durable_graph.ports.payload_store import PayloadStore

PARALLEL_FETCHES = 8  # payloads fetched at once from a store without `get_many`
_T = TypeVar("_T")

__all__ = ["PARALLEL_FETCHES", "get_many", "read_each"]


def get_many(payloads: PayloadStore, refs: Sequence[PayloadRef]) -> list[bytes]:
    """The bytes under `refs`, in order, each checked against its digest."""
    batch: Callable[[Sequence[PayloadRef]], list[bytes]] | None = getattr(
        payloads, "get_many", None
    )
    if batch is not None:
        return batch(refs)
    return read_each(payloads.get, refs)


def read_each(read: Callable[[Any], _T], items: Sequence[Any]) -> list[_T]:
    """`read` of every item, in order: a few at a time from a thread pool when there are
    several (payload stores are safe to read from several threads)."""
    if len(items) <= 2:
        return [read(item) for item in items]
    with ThreadPoolExecutor(min(PARALLEL_FETCHES, len(items))) as pool:
        return list(pool.map(read, items))
