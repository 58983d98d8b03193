"""What a thread's stored records and head keep sealed, opened, and what erasure took, named:
the part of `RecordStore` (backends/records.py) that knows the thread's data key
(`encryption.py`) and its erasure records (`erasure_record.py`)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from durable_graph.checkpoint import Change, Checkpoint, ThreadRecord
from durable_graph.encryption import SealBroken, ThreadCipher, chunk_value, open_change
from durable_graph.erasure_parts import decorate, has_erased_parts
from durable_graph.erasure_record import (
    ErasureRecord,
    erased_marker,
    load_erasures,
    parse_erasures,
)
from durable_graph.errors import CorruptRecord, DataKeyUnavailable
from durable_graph.keys import Keyring
from durable_graph.ports.checkpoint_store import CheckpointStore
from durable_graph.sealed_fields import Unreadable, has_sealed, open_record, open_thread

UNREADABLE = "$unreadable"  # the marker of a sealed part this process cannot open, and why
_Sealed = TypeVar("_Sealed", Checkpoint, ThreadRecord)  # what `_open_sealed` opens


class RecordOpener:
    """Opens the sealed parts of the records and heads of `inner`'s threads with their data
    keys (`keys`; None: nothing is sealed here, and a sealed part is unreadable), and names
    the erasure record behind an erased part (read once per thread, `cache_threads` kept)."""

    def __init__(self, inner: CheckpointStore, keys: Keyring | None, cache_threads: int) -> None:
        self.inner = inner
        self.keys = keys
        self.cache_threads = cache_threads
        self._lock = threading.Lock()
        self._erasures: OrderedDict[str, list[ErasureRecord]] = OrderedDict()

    def opened(self, record: Checkpoint) -> Checkpoint:
        """The record with its sealed parts opened (`sealed_fields.py`): io responses (None
        where the key is gone), task arguments, interrupt payload, resume values and error
        message (a marker saying why, where the key is gone); its erased parts named."""
        if has_erased_parts(record):  # erased by `erase --parts`: say by whom
            record = decorate(record, self.lookup(record.thread_id))
        if not has_sealed(record):
            return record
        return self._open_sealed(open_record, record, record.thread_id, record.step)

    def sealed_value(self, row: Checkpoint, name: str, change: Change) -> Any:
        """An inline value sealed with the thread's data key (its `d` is the associated data:
        a box moved from another change does not open)."""
        try:
            cipher = self.cipher(row.thread_id)
        except DataKeyUnavailable as exc:
            return self.unreadable(row, name, exc)
        try:
            return chunk_value(open_change(change, cipher))
        except (SealBroken, ValueError) as exc:
            raise CorruptRecord(
                row.thread_id, row.step, f"the sealed value of {name!r} does not open: {exc}"
            ) from exc

    def cipher(self, thread_id: str) -> ThreadCipher:
        """The thread's data key; `DataKeyUnavailable` without the key-encryption key."""
        if self.keys is None:
            raise DataKeyUnavailable(
                thread_id, "the store was opened without the key-encryption key that wraps its key"
            )
        return self.keys.cipher(thread_id)

    def unreadable(self, row: Checkpoint, name: str, exc: DataKeyUnavailable) -> Any:
        """An erasure record covers the value (its key was destroyed by erasure): the erased
        marker; otherwise the value is simply not readable here."""
        erasure = self.erasure(row.thread_id, row.step, name)
        if erasure is None:
            raise exc
        return erased_marker(row.step, erasure)

    def opened_thread(self, record: ThreadRecord | None) -> ThreadRecord | None:
        if record is not None and has_erased_parts(record):
            record = decorate(record, self.lookup(record.thread_id))
        if record is None or not has_sealed(record):
            return record
        return self._open_sealed(open_thread, record, record.thread_id, record.head_step)

    def _open_sealed(
        self,
        open_parts: Callable[[_Sealed, ThreadCipher | None, Unreadable], _Sealed],
        record: _Sealed,
        thread_id: str,
        step: int,
    ) -> _Sealed:
        """`record` (a step's record or a thread head) opened with the thread's cipher; a
        sealed part that does not open is `CorruptRecord` at `step`."""
        cipher, unreadable = self._opener(thread_id, step)
        try:
            return open_parts(record, cipher, unreadable)
        except (SealBroken, ValueError) as exc:
            raise CorruptRecord(thread_id, step, f"a sealed part does not open: {exc}") from exc

    def _opener(self, thread_id: str, step: int) -> tuple[ThreadCipher | None, Unreadable]:
        """The thread's cipher, or None and what stands for a part it cannot open: the
        erased marker of the erasure that destroyed the key, else why it cannot be read."""
        try:
            return self.cipher(thread_id), None
        except DataKeyUnavailable as exc:
            why = str(exc)
        with self._lock:
            known = self._erasures.get(thread_id)
        if known is None:
            known, _ = parse_erasures(load_erasures(self.inner, thread_id))
        shredder = next((r for r in known if r.data_key), None)
        if shredder is not None:
            return None, lambda: erased_marker(step, shredder)
        return None, lambda: {UNREADABLE: why}

    def erasure(self, thread_id: str, step: int, name: str) -> ErasureRecord | None:
        """The erasure record that erased `name` at `step` (read once per thread, again when
        the one known do not name it: another process may have erased since)."""
        with self._lock:
            known = self._erasures.get(thread_id)
        for attempt in range(2):
            if known is None or attempt:
                known, _ = parse_erasures(load_erasures(self.inner, thread_id))
                with self._lock:
                    self._erasures[thread_id] = known
                    while len(self._erasures) > self.cache_threads:
                        self._erasures.popitem(last=False)
            for record in known:
                if record.covers(step, name):
                    return record
        return None

    def lookup(self, thread_id: str) -> Callable[[int, str], ErasureRecord | None]:
        return lambda step, name: self.erasure(thread_id, step, name)

    def forget(self, thread_id: str) -> None:
        """Drop the thread's erasure records (erasure wrote another)."""
        with self._lock:
            self._erasures.pop(thread_id, None)


__all__ = ["UNREADABLE", "RecordOpener"]
