"""Materialising stored records (format 2, `docs/record-format.md`): a record's state folded
from the changes of the steps since its `anchor` (or the snapshot it names), onto the state at
hand in the cache when the previous step is there. The part of `RecordStore`
(`backends/records.py`) that reads; a cold fold recomputes the field digests and checks them
against the record's state root, so a tampered read hint, digest or offloaded chunk is refused.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from durable_graph.backends.legacy_v1 import LegacyReader
from durable_graph.backends.record_opener import RecordOpener
from durable_graph.backends.record_state import State, StateCache
from durable_graph.backends.snapshot_values import ListReset, snapshot_values
from durable_graph.backends.snapshots import Snapshot, SnapshotFormatError, read_snapshot
from durable_graph.canonical import sha256_hex
from durable_graph.changes import advance, state_root
from durable_graph.checkpoint import Change, Checkpoint, IoRecord, PayloadRef, Task
from durable_graph.encryption import chunk_value, is_sealed
from durable_graph.erasure_record import erased_marker, is_erased
from durable_graph.errors import (
    CorruptRecord,
    DataKeyUnavailable,
    PayloadCorrupted,
    UnsupportedFormat,
)
from durable_graph.ports.checkpoint_store import CheckpointStore
from durable_graph.ports.payload_store import PayloadStore

# How many times a read of an old snapshot asks for the thread's newest one when the newest it
# got lost segments to a merge before they were fetched (`Materialiser._through_newer`).
NEWER_ATTEMPTS = 4


class Materialiser:
    """Hands out `inner`'s rows as records with their state (payloads read from `payloads`,
    sealed parts opened by `opener`, format-1 rows decoded by `legacy`), remembering the
    last state of each thread in `cache`."""

    def __init__(
        self,
        inner: CheckpointStore,
        payloads: PayloadStore,
        opener: RecordOpener,
        legacy: LegacyReader,
        cache: StateCache,
    ) -> None:
        self.inner = inner
        self.payloads = payloads
        self.opener = opener
        self.legacy = legacy
        self.cache = cache

    def materialise(self, row: Checkpoint) -> Checkpoint:
        """The record with its state, from the cache, the previous step, or a fold."""
        if row.format == 1:
            return self.legacy.decode_one(row, self.lists)
        cached = self.cache.get(row.thread_id)
        if cached is not None and cached.step == row.step and cached.hash == row.hash:
            if cached.record is not None:
                return cached.record
            return self._keep_record(cached, row)
        if cached is not None and cached.step == row.step - 1 and cached.hash == row.prev_hash:
            return self._keep_record(self._advance(cached, row, copy=True), row)
        return self.fold_rows([row])[-1]

    def fold_rows(
        self, rows: Sequence[Checkpoint], keep: int | None = None, plain_from: int | None = None
    ) -> list[Checkpoint]:
        """Materialise consecutive rows (oldest first), folding from the first one's anchor
        (or from step `plain_from`, without snapshots); return the last `keep` of them (all of
        `rows` by default)."""
        first = rows[0]
        keep = len(rows) if keep is None else keep
        start = first.anchor if plain_from is None else plain_from
        rows = [*self.rows_before(first, start), *rows]
        first_kept = len(rows) - keep
        state = State(-1, "", {}, {}, {})
        out: list[Checkpoint] = []
        start = 0
        if plain_from is None and rows[0].snap is not None and rows[0].step == first.anchor:
            try:
                state = self._from_snapshot(rows[0])
            except _Superseded as gone:  # a later merge deleted its segments: fold the rows
                return self.fold_rows(rows, keep, plain_from=gone.start)
            start = 1
            if first_kept == 0:
                out.append(self.complete(rows[0], state))
        for index in range(start, len(rows)):
            row = rows[index]
            if row.format == 1:
                raise CorruptRecord(row.thread_id, row.step, "a format-1 record inside a fold")
            handed_out = index >= first_kept
            state = self._advance(state, row, copy=handed_out)
            if handed_out:
                out.append(self.complete(row, state))
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
        self.cache.remember(last.thread_id, state)
        return out

    def rows_before(self, row: Checkpoint, start: int) -> list[Checkpoint]:
        """The stored rows from step `start` up to `row`, oldest first: one range read."""
        if start >= row.step:
            return []
        earlier = self.inner.list_checkpoints(
            row.thread_id, newest_first=True, before_step=row.step, limit=row.step - max(start, 0)
        )
        earlier.reverse()
        return earlier

    def snapshot_of(self, row: Checkpoint) -> Snapshot:
        """The snapshot `row` names, refused unless it is the state after `row`: its field
        digests must give the row's state root (its values are not fetched here)."""
        assert row.snap is not None
        try:
            snapshot = read_snapshot(self.payloads, row.snap)
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
        return snapshot

    def _from_snapshot(self, row: Checkpoint) -> State:
        """The state after `row` from the snapshot it names, refused unless its field digests
        give the row's state root. A snapshot older than a merge that deleted its segments
        (`segment_runs.py`) is read through the newest one (`_through_newer`), or folded from
        the rows."""
        snapshot = self.snapshot_of(row)
        newer: Snapshot | None = None
        try:
            try:
                values = snapshot_values(self.payloads, snapshot)
            except PayloadCorrupted as missing:
                values, newer = self._through_newer(row, snapshot, missing)
        except ListReset as exc:  # a list re-set since: fold from the rows instead
            raise _Superseded(min(snapshot.anchors.values(), default=row.step)) from exc
        except PayloadCorrupted as exc:
            raise CorruptRecord(row.thread_id, row.step, f"snapshot: {exc}") from exc
        except SnapshotFormatError as exc:
            raise UnsupportedFormat(row.thread_id, row.step, str(exc)) from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptRecord(row.thread_id, row.step, f"snapshot unreadable: {exc}") from exc
        return State(
            row.step,
            row.hash,
            values,
            snapshot.digests,
            snapshot.anchors,
            snapshot.chunks,
            snapshot=snapshot if newer is None else None,  # a writer extends a whole one only
        )

    def _through_newer(
        self, row: Checkpoint, snapshot: Snapshot, missing: PayloadCorrupted
    ) -> tuple[dict[str, Any], Snapshot]:
        """`snapshot`'s values read through the thread's newest snapshot, after a segment it
        names was `missing` (deleted by a merge, or corrupt).

        Merges go on while a reader reads: the newest snapshot this asks for may itself lose
        segments to the next merge before they are fetched. So it asks again, up to
        `NEWER_ATTEMPTS` times, as long as the newest snapshot moved since the last attempt
        (every merge writes a newer one). A failure that the same newest snapshot gives twice
        is that snapshot's own corruption, named at its step; one that `snapshot` gives while
        it should be whole (not older than the newest's `gone_before`), at `snapshot`'s step.
        A reader outpaced by merges `NEWER_ATTEMPTS` times folds from the rows: slow, correct.
        """
        failure, tried = missing, None
        for _ in range(NEWER_ATTEMPTS):
            newer = self._newer_snapshot(row.thread_id, snapshot.step)
            if newer is None:  # it should be whole: a segment was altered or deleted
                raise failure
            if tried is not None and newer.ref == tried.ref:  # nothing merged since: corrupt
                raise CorruptRecord(
                    row.thread_id,
                    newer.step,
                    f"snapshot (read for step {row.step} through this newer one): {failure}",
                ) from failure
            try:
                return snapshot_values(self.payloads, snapshot, newer), newer
            except PayloadCorrupted as exc:  # merged away meanwhile, or corrupt: ask again
                failure, tried = exc, newer
        raise _Superseded(min(snapshot.anchors.values(), default=row.step)) from failure

    def _newer_snapshot(self, thread_id: str, step: int) -> Snapshot | None:
        """The thread's newest snapshot (the head row's anchor's), if it says the snapshot of
        `step` may name segments a merge deleted (`gone_before`); None if that one should be
        whole."""
        head = self.inner.head_checkpoint(thread_id)
        row = self.inner.get_checkpoint(thread_id, head.anchor) if head is not None else None
        if row is None or row.snap is None:
            return None
        try:
            newest = read_snapshot(self.payloads, row.snap)
        except (PayloadCorrupted, SnapshotFormatError, ValueError, KeyError, TypeError):
            return None
        return newest if step < newest.gone_before else None

    def _advance(self, before: State, row: Checkpoint, *, copy: bool) -> State:
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
            value = self.change_value(row, name, change)
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
        return State(row.step, row.hash, values, digests, anchors, chunks, snapshot=before.snapshot)

    def fold_field(
        self, name: str, value: Any, changes: Sequence[tuple[Checkpoint, Change]]
    ) -> Any:
        """One field's value after `changes` (oldest first, each with its row) from `value`
        (None: absent), folded as `_advance` folds it (a lazy read, `lazy_state.py`)."""
        state = State(0, "", {} if value is None else {name: value}, {}, {})
        for row, change in changes:
            one = row.model_copy(update={"changes": {name: change}})
            state = self._advance(state, one, copy=True)
        return state.values.get(name)

    def _keep_record(self, state: State, row: Checkpoint) -> Checkpoint:
        record = self.complete(row, state)
        self.cache.remember(row.thread_id, replace(state, record=record))
        return record

    def change_value(self, row: Checkpoint, name: str, change: Change) -> Any:
        """The value one change of `row` carries (its chunk fetched and checked against `d`,
        a sealed value opened, an erased one as its marker)."""
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
        cached = self.cache.get(record.thread_id)
        if cached is not None and cached.record is not None and cached.hash == record.hash:
            return cached.record
        return self.opener.opened(record)

    def _payload(self, row: Checkpoint, ref: PayloadRef) -> bytes:
        try:
            return self.payloads.get(ref)
        except PayloadCorrupted as exc:
            raise CorruptRecord(row.thread_id, row.step, str(exc)) from exc

    def lists(self, row: Checkpoint) -> Checkpoint:
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

    def complete(self, row: Checkpoint, state: State | None) -> Checkpoint:
        row = self.opened(self.lists(row))
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


class _Superseded(Exception):
    """A snapshot whose segments a later merge deleted; fold from step `start` instead."""

    def __init__(self, start: int) -> None:
        super().__init__(start)
        self.start = start
