"""A step's materialised state and the per-thread cache of the last one (`backends/records.py`).

The cache is what makes the hot path read nothing: step k+1 written right after step k in this
process folds its changes onto step k's state at hand. A committed step is immutable and written
once, so a remembered state is safe to hand out without a read, as long as a unit of work that
rolled back makes the cache forget (`record_units.rolls_back_cache`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from durable_graph.backends.snapshots import Snapshot
from durable_graph.checkpoint import Checkpoint, PayloadRef

CACHE_THREADS = 256


@dataclass(frozen=True)
class State:
    """A step's materialised state: values, field digests, and each field's last-set step."""

    step: int
    hash: str
    values: dict[str, Any]
    digests: dict[str, str]
    anchors: dict[str, int]
    chunks: dict[str, PayloadRef] = field(default_factory=dict)  # whole values kept as chunks
    record: Checkpoint | None = None  # the whole materialised record, once built
    snapshot: Snapshot | None = None  # the latest snapshot at or before `step`, if known


def state_of(
    checkpoint: Checkpoint, record: Checkpoint | None = None, snapshot: Snapshot | None = None
) -> State:
    """The state a materialised record carries."""
    return State(
        checkpoint.step,
        checkpoint.hash,
        checkpoint.values,
        checkpoint.digests,
        checkpoint.anchors,
        checkpoint.chunks,
        record,
        snapshot,
    )


class StateCache:
    """The last materialised state of the `cache_threads` threads used most recently; a
    state never replaces a later step's."""

    def __init__(self, cache_threads: int = CACHE_THREADS) -> None:
        self.cache_threads = cache_threads
        self._cache: OrderedDict[str, State] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, thread_id: str) -> State | None:
        with self._lock:
            return self._cache.get(thread_id)

    def remember(self, thread_id: str, state: State) -> None:
        with self._lock:
            cached = self._cache.get(thread_id)
            if cached is not None and cached.step > state.step:
                return
            self._cache[thread_id] = state
            self._cache.move_to_end(thread_id)
            while len(self._cache) > self.cache_threads:
                self._cache.popitem(last=False)

    def drop(self, thread_id: str) -> None:
        with self._lock:
            self._cache.pop(thread_id, None)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()
