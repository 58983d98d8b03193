"""`RecordStore`: the checkpoint store every backend is used through. It keeps records in their
stored form (format 2: a step's changes, never the whole state; `docs/record-format.md`) in any
inner `CheckpointStore`, and hands out records with their state materialised.

Reading a record folds the changes of the steps from its `anchor` (the oldest step at which a
field it still has was last set whole) up to it: one range read, whatever the thread's length.
Writers re-set small unchanged fields every `KEEP_EVERY` steps (`keep` changes), so the anchor
of a thread that does not accumulate stays near its head. A per-thread cache of the last
materialised state means the hot path (step k+1 written right after step k in this process)
reads nothing at all (`record_state.py`). A cold fold recomputes the field digests and checks
them against the record's state root, so a tampered read hint, digest or offloaded chunk is
refused; an inline value edited in place is not re-hashed on every read (that is `verify`'s
`state` check). The folding is `record_fold.py`; opening sealed parts `record_opener.py`.

Format-1 records (stored whole, or as `$delta` documents by the earlier `DeltaStore`) are read
through `legacy_v1` and verify with their original hashes.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any, Protocol, runtime_checkable

from durable_graph.backends.legacy_v1 import LegacyReader
from durable_graph.backends.record_fold import Materialiser
from durable_graph.backends.record_opener import RecordOpener
from durable_graph.backends.record_snapshots import drop_lost_snapshot, with_snapshot
from durable_graph.backends.record_state import CACHE_THREADS, StateCache, state_of
from durable_graph.backends.segment_runs import Retirements
from durable_graph.backends.snapshots import Snapshot
from durable_graph.canonical import canonical_bytes
from durable_graph.changes import state_root
from durable_graph.checkpoint import Checkpoint, ThreadRecord, VersionedRecord
from durable_graph.disposal import Disposal
from durable_graph.errors import RecordConflict, StepConflict
from durable_graph.keys import Keyring, KeyWrapper
from durable_graph.listing import ThreadPage
from durable_graph.ports.checkpoint_store import CheckpointStore
from durable_graph.ports.commit_writes import CombinedCommit, CommitWrites
from durable_graph.ports.leftovers import Leftovers
from durable_graph.ports.payload_store import PayloadStore
from durable_graph.sealed_fields import has_sealed
from durable_graph.sealed_payloads import SealingPayloadStore
from durable_graph.sealed_records import open_record_value, seal_record, seal_writes

LIST_CONTENT_TYPE = "application/vnd.durable-graph.list+json"


@runtime_checkable
class KnownHeads(Protocol):
    """Optional capability of an inner store that remembers the rows this process appended
    (the embedded store): its head read answers "the record you hold" without building the
    row's stored form (about 75,000 instructions for an approval step), which `RecordStore`
    would only have looked up in its cache to hand out the record it holds."""

    def head_checkpoint_or(self, thread_id: str, known: Checkpoint) -> Checkpoint | None:
        """`head_checkpoint(thread_id)`, or `known` itself when the head row is the one this
        process appended for `known` (same step, same hash)."""
        ...


class RecordStore:
    """A `CheckpointStore` over `inner` that stores changes and returns materialised records."""

    def __init__(
        self,
        inner: CheckpointStore,
        payloads: PayloadStore,
        *,
        keys: Keyring | None = None,
        cache_threads: int = CACHE_THREADS,
        deletes_payloads: bool = True,
        leftovers: Leftovers | None = None,
    ) -> None:
        self.inner = inner
        # Asked once: an isinstance check against a runtime Protocol walks its members, and
        # every commit asked it (2% of an approval thread's CPU).
        self._combined = inner if isinstance(inner, CombinedCommit) else None
        self._heads = inner if isinstance(inner, KnownHeads) else None
        # The per-thread data keys when encryption is on (`encryption.py`); None: values are
        # stored in the clear and nothing here looks for a key.
        self.keys = keys
        self.cache_threads = cache_threads
        self.legacy = LegacyReader(inner)
        self.cache = StateCache(cache_threads)
        self.opener = RecordOpener(inner, keys, cache_threads)
        # `payloads` (a property) is the reader's: a `SealingPayloadStore` when `keys` is given.
        self.fold = Materialiser(inner, payloads, self.opener, self.legacy, self.cache)
        # Whether this process may delete the snapshot segments a merge retired
        # (`segment_runs.py`); False where its role may not delete payloads (the AWS worker),
        # which leaves them in `leftovers` for the sweeper (`disposal.py`).
        self.deletes_payloads = deletes_payloads
        self.leftovers = leftovers
        self.retirements = Retirements()
        self.units = threading.local()  # this thread's depth in `rolls_back_cache` units

    # ------------------------------------------------------------------ checkpoints

    def append_checkpoint(self, checkpoint: Checkpoint, writes: CommitWrites | None = None) -> None:
        """Write the stored form iff the step is absent; remember the materialised state.

        `writes` (the thread head, small records) go with it: in the same request where the
        inner store can (`CombinedCommit`), else right after it, each on its own condition
        (a lost one is left as it is: they are follow-ups, never conditions of the step)."""
        snapshot: Snapshot | None = None
        if writes is not None and not writes:  # nothing besides the step (asked once)
            writes = None
        if writes is not None and writes.records and self.keys is not None:
            records = seal_writes(self.keys, checkpoint.thread_id, writes.records)
            writes = CommitWrites(head=writes.head, records=records)
        if checkpoint.format >= 2:
            checkpoint, snapshot = with_snapshot(self.cache, self.payloads, self.keys, checkpoint)
        try:
            # The store writes `to_stored_json()`.
            if writes is not None and self._combined is not None:
                combined = self._combined.append_with(checkpoint, writes)
            else:
                combined = False
                self.inner.append_checkpoint(checkpoint)
        except StepConflict as conflict:
            winner = conflict.existing
            if snapshot is not None and snapshot.step == checkpoint.step:
                drop_lost_snapshot(
                    self.retirements, self._disposal(), checkpoint.thread_id, snapshot, winner
                )
            decoded = self.materialise(winner) if isinstance(winner, Checkpoint) else winner
            raise StepConflict(checkpoint.thread_id, checkpoint.step, decoded) from conflict
        if checkpoint.format >= 2:
            record = self.opened(checkpoint)
            self.cache.remember(checkpoint.thread_id, state_of(checkpoint, record, snapshot))
        if snapshot is not None and snapshot.deletable and snapshot.step == checkpoint.step:
            self.retirements.retire(
                self._disposal(),
                snapshot.deletable,
                thread_id=checkpoint.thread_id,
                step=snapshot.step,
            )
        if writes is not None and not combined:
            self._write_after(checkpoint.thread_id, writes)

    def _disposal(self) -> Disposal:
        """Where this process's unreferenced payloads go (`disposal.py`)."""
        return Disposal(self.payloads, self.deletes_payloads, self.leftovers)

    def _write_after(self, thread_id: str, writes: CommitWrites) -> None:
        """The companions of a step written alone, after it; a lost condition is kept as is."""
        if writes.head is not None:
            self.inner.advance_thread(writes.head)
        for record in writes.records:
            with suppress(RecordConflict):
                self.inner.put_record(
                    thread_id, record.key, record.value, expected_version=record.expected_version
                )

    def get_checkpoint(self, thread_id: str, step: int) -> Checkpoint | None:
        row = self.inner.get_checkpoint(thread_id, step)
        return self.materialise(row) if row is not None else None

    def head_checkpoint(self, thread_id: str) -> Checkpoint | None:
        known = self._known(thread_id)
        row = self._head_row(thread_id, known)
        if row is None or row is known:
            return row
        return self.materialise(row)

    def _known(self, thread_id: str) -> Checkpoint | None:
        """The materialised record this process holds for the thread (its last step here)."""
        cached = self.cache.get(thread_id)
        return cached.record if cached is not None else None

    def _head_row(self, thread_id: str, known: Checkpoint | None) -> Checkpoint | None:
        """The head row, or `known` itself where the inner store can tell that the head is the
        row of that record (`KnownHeads`): what `materialise` would hand out for it, without
        the stored form built only to be looked up in the cache."""
        if known is not None and self._heads is not None:
            return self._heads.head_checkpoint_or(thread_id, known)
        return self.inner.head_checkpoint(thread_id)

    def lazy_head(self, thread_id: str) -> tuple[Checkpoint, Callable[[], Checkpoint]] | None:
        """The head as its row says it (task and io lists fetched, sealed parts opened, but
        `values`, `digests` and `anchors` empty), and a function that materialises it (folds
        its state, the work of `head_checkpoint`), for readers that may not need the state:
        one row read, however long the thread. A format-1 head comes materialised."""
        known = self._known(thread_id)
        row = self._head_row(thread_id, known)
        if row is None:
            return None
        if row is known:
            return known, lambda: known
        cached = self.cache.get(thread_id)
        if row.format == 1 or (cached is not None and cached.hash == row.hash):
            record = self.materialise(row)  # decoded whole, or at hand in the cache
            return record, lambda: record
        return self.fold.complete(row, None), functools.partial(self.fold.materialise, row)

    def list_checkpoints(
        self,
        thread_id: str,
        *,
        newest_first: bool = True,
        before_step: int | None = None,
        limit: int | None = None,
    ) -> list[Checkpoint]:
        """Records with their state: O(limit) records handed out, one fold to reach them."""
        rows = self.inner.list_checkpoints(
            thread_id, newest_first=newest_first, before_step=before_step, limit=limit
        )
        if newest_first:
            rows.reverse()
        if not rows:
            return []
        legacy = [r for r in rows if r.format == 1]
        current = [r for r in rows if r.format >= 2]
        decoded = self.legacy.decode(legacy, self.fold.lists) + (
            self.fold.fold_rows(current) if current else []
        )
        return list(reversed(decoded)) if newest_first else decoded

    def peek(self, thread_id: str, step: int) -> Checkpoint | None:
        """Step `step` with its state if this process has it at hand (no read): the record a
        worker just committed or read is the one its next messages run from. Safe without a
        read because a committed step is immutable and a step is written once."""
        cached = self.cache.get(thread_id)
        if cached is None or cached.step != step:
            return None
        return cached.record

    def ledger(self, thread_id: str) -> list[Checkpoint]:
        """Every record oldest first, as stored plus its task and io lists, without
        materialising the state: what verification and export read (O(total changes))."""
        rows = self.inner.list_checkpoints(thread_id, newest_first=False)
        legacy = [r for r in rows if r.format == 1]
        return self.legacy.decode(legacy, self.fold.lists) + [
            self.fold.lists(r) for r in rows if r.format >= 2
        ]

    def stored_record(self, thread_id: str, step: int) -> Checkpoint | None:
        """One record as `ledger` gives it (its sealed parts sealed: what its hash covers)."""
        row = self.inner.get_checkpoint(thread_id, step)
        if row is None:
            return None
        return (
            self.legacy.decode_one(row, self.fold.lists)
            if row.format == 1
            else self.fold.lists(row)
        )

    # ------------------------------------------------------------------ delegated

    def rewrite_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Replace a stored row (erasure only); the thread's cached state is dropped."""
        self.inner.rewrite_checkpoint(checkpoint)
        self.forget_thread(checkpoint.thread_id)

    def get_thread(self, thread_id: str) -> ThreadRecord | None:
        return self.opener.opened_thread(self.inner.get_thread(thread_id))

    def put_thread(self, record: ThreadRecord, *, expected_revision: int | None) -> ThreadRecord:
        return self.inner.put_thread(record, expected_revision=expected_revision)

    def advance_thread(self, record: ThreadRecord) -> bool:
        return self.inner.advance_thread(record)

    def list_threads(self, *, status: str | None = None, limit: int = 1000) -> list[ThreadRecord]:
        found = self.inner.list_threads(status=status, limit=limit)
        return [t for t in map(self.opener.opened_thread, found) if t is not None]

    def page_threads(
        self,
        *,
        status: str | None = None,
        prefix: str = "",
        newest_first: bool = True,
        limit: int = 50,
        cursor: str | None = None,
    ) -> ThreadPage:
        page = self.inner.page_threads(
            status=status, prefix=prefix, newest_first=newest_first, limit=limit, cursor=cursor
        )
        if not any(map(has_sealed, page.threads)):
            return page
        opened = [t for t in map(self.opener.opened_thread, page.threads) if t is not None]
        return page.model_copy(update={"threads": opened})

    # Records that name people (`sealed_records.PERSONAL`: approvals, approval links) are
    # sealed on the way in and opened on the way out; every other record passes as it is.

    def get_record(self, thread_id: str, key: str) -> VersionedRecord | None:
        return self._open_record(thread_id, self.inner.get_record(thread_id, key))

    def put_record(
        self, thread_id: str, key: str, value: dict[str, Any], *, expected_version: int | None
    ) -> VersionedRecord:
        stored = seal_record(self.keys, thread_id, key, value)
        try:
            written = self.inner.put_record(
                thread_id, key, stored, expected_version=expected_version
            )
        except RecordConflict as conflict:
            current = conflict.current
            if not isinstance(current, VersionedRecord) or stored is value:
                raise
            raise RecordConflict(key, self._open_record(thread_id, current)) from conflict
        return written if stored is value else replace_value(written, value)

    def get_records(self, thread_id: str, keys: Sequence[str]) -> dict[str, VersionedRecord]:
        found = self.inner.get_records(thread_id, keys)
        if self.keys is None:
            return found
        return {k: self._open_record(thread_id, v) or v for k, v in found.items()}

    def _open_record(
        self, thread_id: str, record: VersionedRecord | None
    ) -> VersionedRecord | None:
        if record is None or self.keys is None:
            return record
        value = open_record_value(self.keys, thread_id, record.key, record.value)
        return record if value is record.value else replace_value(record, value)

    def complete_task(
        self, thread_id: str, counter_key: str, member_key: str, value: dict[str, Any]
    ) -> tuple[bool, int]:
        return self.inner.complete_task(thread_id, counter_key, member_key, value)

    def close(self) -> None:
        closer = getattr(self.inner, "close", None)
        if callable(closer):
            closer()

    # ------------------------------------------------------------------ materialising

    @property
    def payloads(self) -> PayloadStore:
        """The payload store (a `SealingPayloadStore` when `keys` is given)."""
        return self.fold.payloads

    @payloads.setter
    def payloads(self, payloads: PayloadStore) -> None:
        self.fold.payloads = payloads

    def materialise(self, row: Checkpoint) -> Checkpoint:
        """The record with its state, from the cache, the previous step, or a fold."""
        return self.fold.materialise(row)

    def opened(self, record: Checkpoint) -> Checkpoint:
        """The record with its sealed parts opened (`sealed_fields.py`); see
        `Materialiser.opened`."""
        return self.fold.opened(record)

    def forget_thread(self, thread_id: str) -> None:
        """Drop what this process keeps of the thread (erasure rewrote its rows)."""
        self.cache.drop(thread_id)
        self.opener.forget(thread_id)

    # ------------------------------------------------------------------ cache

    def forget(self) -> None:
        """Drop every remembered state. A unit of work that appended a step and then rolled
        back leaves a state here that may never have been committed; `peek` must not hand it
        out, or a step committed elsewhere would be built upon a phantom (`rolls_back_cache`)."""
        self.cache.clear()


def open_records(
    inner: CheckpointStore,
    payloads: PayloadStore,
    kek: KeyWrapper | None = None,
    *,
    deletes_payloads: bool = True,
    leftovers: Leftovers | None = None,
) -> RecordStore:
    """The record store every backend factory builds: with `kek` (encryption on), per-thread
    data keys wrapped by it and a payload store that seals; use its `payloads` as the
    backend's. `deletes_payloads`, `leftovers`: the backend's (what happens to the snapshot
    segments a merge retired, `disposal.py`)."""
    keys = Keyring(inner, kek) if kek is not None else None
    return RecordStore(
        inner,
        SealingPayloadStore(payloads, keys) if keys is not None else payloads,
        keys=keys,
        deletes_payloads=deletes_payloads,
        leftovers=leftovers,
    )


def replace_value(record: VersionedRecord, value: dict[str, Any]) -> VersionedRecord:
    return VersionedRecord(key=record.key, value=value, version=record.version)


def list_bytes(items: Sequence[Any]) -> bytes:
    """The payload form of a task or io list kept outside its record."""
    return canonical_bytes(list(items))


__all__ = ["LIST_CONTENT_TYPE", "RecordStore", "list_bytes", "open_records", "state_root"]
