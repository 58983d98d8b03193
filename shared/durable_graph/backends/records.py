"""`RecordStore`: the checkpoint store every backend is used through. It keeps records in their
stored form (format 2: a step's changes, never the whole state; `docs/record-format.md`) in any
inner `CheckpointStore`, and hands out records with their state materialised.

Reading a record folds the changes of the steps from its `anchor` (the oldest step at which a
field it still has was last set whole) up to it: one range read, whatever the thread's length.
Writers re-set small unchanged fields every `KEEP_EVERY` steps (`keep` changes), so the anchor
of a thread that does not accumulate stays near its head. A per-thread cache of the last
materialised state means the hot path (step k+1 written right after step k in this process)
reads nothing at all. A cold fold recomputes the field digests and checks them against the
record's state root, so a tampered read hint, digest or offloaded chunk is refused; an inline
value edited in place is not re-hashed on every read (that is `verify`'s `state` check).

Format-1 records (stored whole, or as `$delta` documents by the earlier `DeltaStore`) are read
through `legacy_v1` and verify with their original hashes.
"""

from __future__ import annotations

import functools
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field, replace
from typing import Any

from durable_graph.backends import snapshots
from durable_graph.backends.legacy_v1 import LegacyReader
from durable_graph.backends.record_opener import RecordOpener
from durable_graph.backends.segment_runs import Retirements, thread_salt
from durable_graph.backends.snapshots import (
    ListReset,
    Snapshot,
    SnapshotFormatError,
    read_snapshot,
    snapshot_values,
    write_snapshot,
)
from durable_graph.canonical import canonical_bytes, sha256_hex
from durable_graph.changes import advance, state_root
from durable_graph.checkpoint import (
    Change,
    Checkpoint,
    IoRecord,
    PayloadRef,
    Task,
    ThreadRecord,
    VersionedRecord,
)
from durable_graph.encryption import chunk_value, is_sealed
from durable_graph.erasure_record import erased_marker, is_erased
from durable_graph.errors import (
    CorruptRecord,
    DataKeyUnavailable,
    PayloadCorrupted,
    RecordConflict,
    StepConflict,
    UnsupportedFormat,
)
from durable_graph.keys import Keyring, KeyWrapper
from durable_graph.listing import ThreadPage
from durable_graph.ports import CheckpointStore, CombinedCommit, CommitWrites, PayloadStore
from durable_graph.sealed_fields import has_sealed
from durable_graph.sealed_payloads import SealingPayloadStore, payloads_for
from durable_graph.sealed_records import open_record_value, seal_record, seal_writes

CACHE_THREADS = 256
LIST_CONTENT_TYPE = "application/vnd.durable-graph.list+json"


@dataclass(frozen=True)
class _State:
    """A step's materialised state: values, field digests, and each field's last-set step."""

    step: int
    hash: str
    values: dict[str, Any]
    digests: dict[str, str]
    anchors: dict[str, int]
    chunks: dict[str, PayloadRef] = field(default_factory=dict)  # whole values kept as chunks
    record: Checkpoint | None = None  # the whole materialised record, once built
    snapshot: Snapshot | None = None  # the latest snapshot at or before `step`, if known


class RecordStore:
    """A `CheckpointStore` over `inner` that stores changes and returns materialised records."""

    def __init__(
        self,
        inner: CheckpointStore,
        payloads: PayloadStore,
        *,
        keys: Keyring | None = None,
        cache_threads: int = CACHE_THREADS,
    ) -> None:
        self.inner = inner
        # Asked once: an isinstance check against a runtime Protocol walks its members, and
        # every commit asked it (2% of an approval thread's CPU).
        self._combined = inner if isinstance(inner, CombinedCommit) else None
        self.payloads = payloads  # a `SealingPayloadStore` when `keys` is given
        # The per-thread data keys when encryption is on (`encryption.py`); None: values are
        # stored in the clear and nothing here looks for a key.
        self.keys = keys
        self.cache_threads = cache_threads
        self.legacy = LegacyReader(inner)
        self._cache: OrderedDict[str, _State] = OrderedDict()
        self._lock = threading.Lock()
        self.opener = RecordOpener(inner, keys, cache_threads)
        # Whether this process may delete the snapshot segments a merge retired
        # (`segment_runs.py`); False where its role may not delete payloads (the AWS worker).
        self.deletes_payloads = True
        self.retirements = Retirements()

    # ------------------------------------------------------------------ checkpoints

    def append_checkpoint(self, checkpoint: Checkpoint, writes: CommitWrites | None = None) -> None:
        """Write the stored form iff the step is absent; remember the materialised state.

        `writes` (the thread head, small records) go with it: in the same request where the
        inner store can (`CombinedCommit`), else right after it, each on its own condition
        (a lost one is left as it is: they are follow-ups, never conditions of the step)."""
        snapshot: Snapshot | None = None
        if writes and writes.records and self.keys is not None:
            records = seal_writes(self.keys, checkpoint.thread_id, writes.records)
            writes = CommitWrites(head=writes.head, records=records)
        if checkpoint.format >= 2:
            checkpoint, snapshot = self._with_snapshot(checkpoint)
        try:
            # The store writes `to_stored_json()`.
            if writes and self._combined is not None:
                combined = self._combined.append_with(checkpoint, writes)
            else:
                combined = False
                self.inner.append_checkpoint(checkpoint)
        except StepConflict as conflict:
            winner = conflict.existing
            decoded = self.materialise(winner) if isinstance(winner, Checkpoint) else winner
            raise StepConflict(checkpoint.thread_id, checkpoint.step, decoded) from conflict
        if checkpoint.format >= 2:
            record = self.opened(checkpoint)
            self._remember(checkpoint.thread_id, _state_of(checkpoint, record, snapshot))
        if snapshot is not None and snapshot.deletable and snapshot.step == checkpoint.step:
            self.retirements.retire(self.payloads, snapshot.deletable, self.deletes_payloads)
        if writes and not combined:
            self._write_after(checkpoint.thread_id, writes)

    def _write_after(self, thread_id: str, writes: CommitWrites) -> None:
        """The companions of a step written alone, after it; a lost condition is kept as is."""
        if writes.head is not None:
            self.inner.advance_thread(writes.head)
        for record in writes.records:
            with suppress(RecordConflict):
                self.inner.put_record(
                    thread_id, record.key, record.value, expected_version=record.expected_version
                )

    def _with_snapshot(self, checkpoint: Checkpoint) -> tuple[Checkpoint, Snapshot | None]:
        """The row with its read hints pointing at the latest snapshot, and a new snapshot
        written first when a cold read of this row would otherwise fold `SNAPSHOT_EVERY` rows
        or more. Needs the previous step at hand (the writer just read or wrote it); without
        it the row keeps the sealer's anchor, which is correct, only slower to read."""
        cached = self._cached(checkpoint.thread_id)
        if (
            cached is None
            or cached.step != checkpoint.step - 1
            or cached.hash != checkpoint.prev_hash
            or checkpoint.values.keys() != checkpoint.digests.keys()
        ):
            return checkpoint, None
        latest = cached.snapshot
        anchor = checkpoint.anchor
        if latest is not None and anchor < latest.step:
            anchor = latest.step
        if checkpoint.step - anchor < snapshots.SNAPSHOT_EVERY:  # read here: tests lower it
            if anchor != checkpoint.anchor:  # the sealer saw a record older than the cache's
                checkpoint = checkpoint.model_copy(update={"anchor": anchor})
            return checkpoint, latest
        payloads = self.payloads
        if self.keys is not None:
            tid = checkpoint.thread_id
            payloads = payloads_for(payloads, tid, self.keys.ensure(tid))
        snapshot = write_snapshot(
            payloads,
            step=checkpoint.step,
            values=checkpoint.values,
            digests=checkpoint.digests,
            anchors=checkpoint.anchors,
            chunks=checkpoint.chunks,
            previous=latest,
            salt=thread_salt(checkpoint.thread_id),
        )
        return checkpoint.model_copy(update={"anchor": checkpoint.step, "snap": snapshot.ref}), (
            snapshot
        )

    def get_checkpoint(self, thread_id: str, step: int) -> Checkpoint | None:
        row = self.inner.get_checkpoint(thread_id, step)
        return self.materialise(row) if row is not None else None

    def head_checkpoint(self, thread_id: str) -> Checkpoint | None:
        row = self.inner.head_checkpoint(thread_id)
        return self.materialise(row) if row is not None else None

    def lazy_head(self, thread_id: str) -> tuple[Checkpoint, Callable[[], Checkpoint]] | None:
        """The head as its row says it (task and io lists fetched, sealed parts opened, but
        `values`, `digests` and `anchors` empty), and a function that materialises it (folds
        its state, the work of `head_checkpoint`), for readers that may not need the state:
        one row read, however long the thread. A format-1 head comes materialised."""
        row = self.inner.head_checkpoint(thread_id)
        if row is None:
            return None
        cached = self._cached(thread_id)
        if row.format == 1 or (cached is not None and cached.hash == row.hash):
            record = self.materialise(row)  # decoded whole, or at hand in the cache
            return record, lambda: record
        return self._complete(row, None), functools.partial(self.materialise, row)

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
        decoded = self.legacy.decode(legacy, self._lists) + (
            self._fold_rows(current) if current else []
        )
        return list(reversed(decoded)) if newest_first else decoded

    def peek(self, thread_id: str, step: int) -> Checkpoint | None:
        """Step `step` with its state if this process has it at hand (no read): the record a
        worker just committed or read is the one its next messages run from. Safe without a
        read because a committed step is immutable and a step is written once."""
        cached = self._cached(thread_id)
        if cached is None or cached.step != step:
            return None
        return cached.record

    def ledger(self, thread_id: str) -> list[Checkpoint]:
        """Every record oldest first, as stored plus its task and io lists, without
        materialising the state: what verification and export read (O(total changes))."""
        rows = self.inner.list_checkpoints(thread_id, newest_first=False)
        legacy = [r for r in rows if r.format == 1]
        return self.legacy.decode(legacy, self._lists) + [
            self._lists(r) for r in rows if r.format >= 2
        ]

    def stored_record(self, thread_id: str, step: int) -> Checkpoint | None:
        """One record as `ledger` gives it (its sealed parts sealed: what its hash covers)."""
        row = self.inner.get_checkpoint(thread_id, step)
        if row is None:
            return None
        return self.legacy.decode_one(row, self._lists) if row.format == 1 else self._lists(row)

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

    def materialise(self, row: Checkpoint) -> Checkpoint:
        """The record with its state, from the cache, the previous step, or a fold."""
        if row.format == 1:
            return self.legacy.decode_one(row, self._lists)
        cached = self._cached(row.thread_id)
        if cached is not None and cached.step == row.step and cached.hash == row.hash:
            if cached.record is not None:
                return cached.record
            return self._keep_record(cached, row)
        if cached is not None and cached.step == row.step - 1 and cached.hash == row.prev_hash:
            return self._keep_record(self._advance(cached, row, copy=True), row)
        return self._fold_rows([row])[-1]

    def _fold_rows(
        self, rows: Sequence[Checkpoint], keep: int | None = None, plain_from: int | None = None
    ) -> list[Checkpoint]:
        """Materialise consecutive rows (oldest first), folding from the first one's anchor
        (or from step `plain_from`, without snapshots); return the last `keep` of them (all of
        `rows` by default)."""
        first = rows[0]
        keep = len(rows) if keep is None else keep
        start = first.anchor if plain_from is None else plain_from
        if start < first.step:
            earlier = self.inner.list_checkpoints(
                first.thread_id,
                newest_first=True,
                before_step=first.step,
                limit=first.step - max(start, 0),
            )
            earlier.reverse()
            rows = [*earlier, *rows]
        first_kept = len(rows) - keep
        state = _State(-1, "", {}, {}, {})
        out: list[Checkpoint] = []
        start = 0
        if plain_from is None and rows[0].snap is not None and rows[0].step == first.anchor:
            try:
                state = self._from_snapshot(rows[0])
            except _Superseded as gone:  # a later merge deleted its segments: fold the rows
                return self._fold_rows(rows, keep, plain_from=gone.start)
            start = 1
            if first_kept == 0:
                out.append(self._complete(rows[0], state))
        for index in range(start, len(rows)):
            row = rows[index]
            if row.format == 1:
                raise CorruptRecord(row.thread_id, row.step, "a format-1 record inside a fold")
            handed_out = index >= first_kept
            state = self._advance(state, row, copy=handed_out)
            if handed_out:
                out.append(self._complete(row, state))
        last = rows[-1]
        if out and out[-1].step == last.step:
            state = replace(state, record=out[-1])
        if state_root(state.digests) != last.root:
            raise CorruptRecord(
                last.thread_id,
                last.step,
                f"the state folded from step {rows[0].step} does not match the record's state "
                "root (a stored change or read hint was altered)",
            )
        self._remember(last.thread_id, state)
        return out

    def _from_snapshot(self, row: Checkpoint) -> _State:
        """The state after `row` from the snapshot it names, refused unless its field digests
        give the row's state root. A snapshot older than a merge that deleted its segments
        (`segment_runs.py`) is read through the newest one, or folded from the rows."""
        assert row.snap is not None
        snapshot: Snapshot | None = None
        newer: Snapshot | None = None
        try:
            snapshot = read_snapshot(self.payloads, row.snap)
            try:
                values = snapshot_values(self.payloads, snapshot)
            except PayloadCorrupted:
                newer = self._newer_snapshot(row.thread_id, snapshot.step)
                if newer is None:  # it should be whole: a segment was altered or deleted
                    raise
                values = snapshot_values(self.payloads, snapshot, newer)
        except ListReset as exc:  # a list re-set since: fold from the rows instead
            assert snapshot is not None
            raise _Superseded(min(snapshot.anchors.values(), default=row.step)) from exc
        except PayloadCorrupted as exc:
            raise CorruptRecord(row.thread_id, row.step, f"snapshot: {exc}") from exc
        except SnapshotFormatError as exc:
            raise UnsupportedFormat(row.thread_id, row.step, str(exc)) from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptRecord(row.thread_id, row.step, f"snapshot unreadable: {exc}") from exc
        if snapshot.step != row.step or state_root(snapshot.digests) != row.root:
            raise CorruptRecord(
                row.thread_id,
                row.step,
                "the snapshot the row names is not the state after this step (its digests do "
                "not give the row's state root)",
            )
        return _State(
            row.step,
            row.hash,
            values,
            snapshot.digests,
            snapshot.anchors,
            snapshot.chunks,
            snapshot=snapshot if newer is None else None,  # a writer extends a whole one only
        )

    def _newer_snapshot(self, thread_id: str, step: int) -> Snapshot | None:
        """The thread's newest snapshot, if it says the snapshot of `step` may name segments a
        merge deleted (`gone_before`); None if that one should be whole."""
        head = self.inner.head_checkpoint(thread_id)
        row = self.inner.get_checkpoint(thread_id, head.anchor) if head is not None else None
        if row is None or row.snap is None:
            return None
        try:
            newest = read_snapshot(self.payloads, row.snap)
        except (PayloadCorrupted, SnapshotFormatError, ValueError, KeyError, TypeError):
            return None
        return newest if step < newest.gone_before else None

    def _advance(self, before: _State, row: Checkpoint, *, copy: bool) -> _State:
        """The state after `row`'s changes. Lists grow in place unless `copy`: values handed out
        earlier never change, and an unshared fold stays linear in the state, not quadratic."""
        values = dict(before.values) if copy or before.step < 0 else before.values
        digests = dict(before.digests)
        anchors = dict(before.anchors)
        chunks = dict(before.chunks)
        for name, change in row.changes.items():
            new_digest = advance(digests.get(name), change)
            whole = change.op in ("set", "keep") and change.ref is not None
            if whole and change.op == "keep" and chunks.get(name) == change.ref:
                digests[name] = str(new_digest)  # the value it already has, by reference
                anchors[name] = row.step
                continue
            value = self._value(row, name, change)
            if whole and change.ref is not None:
                chunks[name] = change.ref
            else:
                chunks.pop(name, None)
            if new_digest is None:
                digests.pop(name, None)
                anchors.pop(name, None)
                values.pop(name, None)
                continue
            digests[name] = new_digest
            if change.op in ("set", "keep"):
                # A list this fold may grow in place must be its own, not the row's.
                values[name] = list(value) if not copy and isinstance(value, list) else value
                anchors[name] = row.step
            elif change.op == "add":
                items = value if isinstance(value, list) else [value]
                current = values.get(name)
                if not copy and isinstance(current, list) and before.step >= 0:
                    current.extend(items)
                else:
                    values[name] = [*(current if isinstance(current, list) else []), *items]
            elif is_erased(value):  # an erased patch: which keys it set is gone too
                values[name] = value
            else:
                current = values.get(name)
                patch = value if isinstance(value, dict) else {}
                values[name] = {**(current if isinstance(current, dict) else {}), **patch}
        return _State(
            row.step, row.hash, values, digests, anchors, chunks, snapshot=before.snapshot
        )

    def _keep_record(self, state: _State, row: Checkpoint) -> Checkpoint:
        record = self._complete(row, state)
        self._remember(row.thread_id, replace(state, record=record))
        return record

    def _value(self, row: Checkpoint, name: str, change: Change) -> Any:
        if change.e is not None:
            return self.opener.sealed_value(row, name, change)
        if change.ref is None and change.s is None and change.v is None:
            return erased_marker(row.step, self.opener.erasure(row.thread_id, row.step, name))
        if change.ref is None:
            return change.v
        if is_sealed(change.ref):
            try:
                self.opener.cipher(row.thread_id)  # a clear refusal without the key, before a read
                data = self._payload(row, change.ref)
            except DataKeyUnavailable as exc:
                return self.opener.unreadable(row, name, exc)
            if sha256_hex(data) != change.d:
                raise CorruptRecord(
                    row.thread_id, row.step, f"chunk of {name!r} is not the one hashed"
                )
            return chunk_value(data)
        if change.ref.sha256 != change.d:
            raise CorruptRecord(row.thread_id, row.step, f"chunk of {name!r} is not the one hashed")
        data = self._payload(row, change.ref)
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise CorruptRecord(row.thread_id, row.step, f"chunk of {name!r}: {exc}") from exc
        return chunk.get("v") if isinstance(chunk, dict) else None

    def opened(self, record: Checkpoint) -> Checkpoint:
        """The record with its sealed parts opened (`sealed_fields.py`): io responses (None
        where the key is gone), task arguments, interrupt payload, resume values and error
        message (a marker saying why, where the key is gone). The step just appended or read
        is at hand opened (and its erased parts named) already: it is asked for again right
        after its commit, and looking for sealed or erased parts walks every task and io."""
        cached = self._cached(record.thread_id)
        if cached is not None and cached.record is not None and cached.hash == record.hash:
            return cached.record
        return self.opener.opened(record)

    def forget_thread(self, thread_id: str) -> None:
        """Drop what this process keeps of the thread (erasure rewrote its rows)."""
        with self._lock:
            self._cache.pop(thread_id, None)
        self.opener.forget(thread_id)

    def _payload(self, row: Checkpoint, ref: PayloadRef) -> bytes:
        try:
            return self.payloads.get(ref)
        except PayloadCorrupted as exc:
            raise CorruptRecord(row.thread_id, row.step, str(exc)) from exc

    def _lists(self, row: Checkpoint) -> Checkpoint:
        """`next` and `io` back in the record when they live in the payload store, and io
        responses kept once (pointers into the changes) back in place."""
        row = row.with_io_restored()
        update: dict[str, Any] = {}
        # With a ref, the list is the payload's, never one stored beside it (which no hash
        # covers).
        if row.next_ref is not None:
            tasks = json.loads(self._payload(row, row.next_ref))
            update["next"] = [Task.model_validate(t) for t in tasks]
        if row.io_ref is not None:
            items = json.loads(self._payload(row, row.io_ref))
            update["io"] = [IoRecord.model_validate(i) for i in items]
        return row.model_copy(update=update) if update else row

    def _complete(self, row: Checkpoint, state: _State | None) -> Checkpoint:
        row = self.opened(self._lists(row))
        if state is None:
            return row
        return row.model_copy(
            update={
                "values": state.values,
                "digests": state.digests,
                "anchors": state.anchors,
                "chunks": state.chunks,
            }
        )

    # ------------------------------------------------------------------ cache

    def forget(self) -> None:
        """Drop every remembered state. A unit of work that appended a step and then rolled
        back leaves a state here that may never have been committed; `peek` must not hand it
        out, or a step committed elsewhere would be built upon a phantom (`rolls_back_cache`)."""
        with self._lock:
            self._cache.clear()

    def _cached(self, thread_id: str) -> _State | None:
        with self._lock:
            return self._cache.get(thread_id)

    def _remember(self, thread_id: str, state: _State) -> None:
        with self._lock:
            cached = self._cache.get(thread_id)
            if cached is not None and cached.step > state.step:
                return
            self._cache[thread_id] = state
            self._cache.move_to_end(thread_id)
            while len(self._cache) > self.cache_threads:
                self._cache.popitem(last=False)


class _Superseded(Exception):
    """A snapshot whose segments a later merge deleted; fold from step `start` instead."""

    def __init__(self, start: int) -> None:
        super().__init__(start)
        self.start = start


def open_records(
    inner: CheckpointStore, payloads: PayloadStore, kek: KeyWrapper | None = None
) -> RecordStore:
    """The record store every backend factory builds: with `kek` (encryption on), per-thread
    data keys wrapped by it and a payload store that seals; use its `payloads` as the
    backend's."""
    if kek is None:
        return RecordStore(inner, payloads)
    keys = Keyring(inner, kek)
    return RecordStore(inner, SealingPayloadStore(payloads, keys), keys=keys)


def rolls_back_cache(
    records: RecordStore, unit: Callable[[], AbstractContextManager[Any]]
) -> Callable[[], AbstractContextManager[Any]]:
    """`unit` (a backend's unit of work) that also makes `records` forget what it remembered
    when the unit ends in an exception (rolled back, or a COMMIT whose outcome is unknown),
    and delete the snapshot segments its steps retired only once it committed."""

    @contextmanager
    def atomic() -> Iterator[Any]:
        with records.retirements.unit():
            try:
                with unit() as inner:
                    yield inner
            except BaseException:
                records.forget()
                raise

    return atomic


def _state_of(
    checkpoint: Checkpoint, record: Checkpoint | None = None, snapshot: Snapshot | None = None
) -> _State:
    return _State(
        checkpoint.step,
        checkpoint.hash,
        checkpoint.values,
        checkpoint.digests,
        checkpoint.anchors,
        checkpoint.chunks,
        record,
        snapshot,
    )


def replace_value(record: VersionedRecord, value: dict[str, Any]) -> VersionedRecord:
    return VersionedRecord(key=record.key, value=value, version=record.version)


def list_bytes(items: Sequence[Any]) -> bytes:
    """The payload form of a task or io list kept outside its record."""
    return canonical_bytes(list(items))


__all__ = ["LIST_CONTENT_TYPE", "RecordStore", "list_bytes", "open_records", "state_root"]
