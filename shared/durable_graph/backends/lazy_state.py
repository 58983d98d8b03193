"""A record's state read field by field, for the opt-in lazy read (`get_state(config,
lazy=True)`, `lazy_values.py`, `docs/record-format.md` §7, §12).

A cold eager read folds the rows since the record's anchor onto the snapshot there, fetching
every segment, and checks the state root. A lazy read splits that in two:

- *The plan*, on first access of the values: the rows `anchor … step` (one range read) and
  the snapshot document, which must be the state after its step (its field digests give
  that row's root, `Materialiser.snapshot_of`); then the field digests are folded through
  the rows' changes (`d` only, no value) and must give the record's state root. So the
  whole state's digests are checked, as the eager read checks them, without a value read.
- *A field*, on its first access: its value from the snapshot's entry and the changes of the
  rows since. A list kept in format-3 segments and only appended to since is a
  `LazySequence` of pieces: each segment (its item count from the snapshot's `cnt`), then
  the items each row appended (in the row, or its chunk fetched now). A segment is fetched
  when an index, slice or iteration touches it, checked against its digest by the payload
  store and to be the salted list of its count. Any other field is read whole, folded as the
  eager read folds it.

A segment that is missing or altered makes the field fall back to the eager read of the
record (`Materialiser.materialise`), which reads an old snapshot's lists through the newest
one (a merge deleted its segments) or raises `CorruptRecord` naming the snapshot's step.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from durable_graph.backends.record_fold import Materialiser
from durable_graph.backends.records import RecordStore
from durable_graph.backends.segment_payloads import fetch_all
from durable_graph.backends.segment_runs import segment_items
from durable_graph.backends.snapshot_values import entry_value
from durable_graph.changes import advance, state_root
from durable_graph.checkpoint import Change, Checkpoint, PayloadRef
from durable_graph.errors import CorruptRecord, PayloadCorrupted
from durable_graph.lazy_values import Convert, FieldSource, LazySequence

__all__ = ["LazyState", "lazy_record"]


def lazy_record(
    store: RecordStore, thread_id: str, step: int | None = None
) -> tuple[Checkpoint, FieldSource] | None:
    """Step `step` of the thread (its head when None) as its row says it (task and io lists
    fetched, sealed parts opened; `values` empty unless the state was at hand), and where its
    fields are read from; None if there is no such step. Nothing of the state is read here."""
    inner = store.inner
    row = (
        inner.head_checkpoint(thread_id) if step is None else inner.get_checkpoint(thread_id, step)
    )
    if row is None:
        return None
    cached = store.cache.get(thread_id)
    if row.format == 1 or (cached is not None and cached.hash == row.hash):
        record = store.materialise(row)  # decoded whole, or at hand in the cache
        return record, Materialised(record.values)
    return store.fold.complete(row, None), LazyState(store.fold, row)


class Materialised(FieldSource):
    """The fields of a state already read whole (at hand in the cache, or a format-1 record)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def names(self) -> list[str]:
        return list(self._values)

    def value(self, name: str, convert: Convert | None) -> Any:
        return _listed(self._values[name], convert)


def _listed(value: Any, convert: Convert | None) -> Any:
    """A list as a `LazySequence` of one piece at hand (every list field of a lazy read is a
    sequence, not a `list`, however it was read); any other value as it is."""
    if not isinstance(value, list):
        return value
    return LazySequence([len(value)], _nothing_to_fetch, {0: value}, convert)


def _nothing_to_fetch(pieces: list[int]) -> list[list[Any]]:
    raise AssertionError(f"pieces {pieces} were at hand")


@dataclass
class _Field:
    """Where one field's value comes from: the snapshot's entry (None: not from the
    snapshot), then these changes of the rows after it, oldest first."""

    entry: dict[str, Any] | None
    changes: list[tuple[Checkpoint, Change]] = field(default_factory=list)


@dataclass
class _Plan:
    fields: dict[str, _Field]
    snapshot_row: Checkpoint | None  # the row at the anchor that names the snapshot


class LazyState(FieldSource):
    """The state of `row`, read field by field through `fold` (see the module docstring)."""

    def __init__(self, fold: Materialiser, row: Checkpoint) -> None:
        self.fold = fold
        self.row = row
        self._lock = threading.Lock()
        self._plan: _Plan | None = None
        self._eager: dict[str, Any] | None = None

    def names(self) -> list[str]:
        return list(self._planned().fields)

    def _planned(self) -> _Plan:
        with self._lock:
            if self._plan is None:
                self._plan = self._make_plan()
            return self._plan

    def _make_plan(self) -> _Plan:
        """The rows since the anchor and the snapshot there, the field digests folded through
        their changes and checked against the record's state root."""
        row, fold = self.row, self.fold
        rows = [*fold.rows_before(row, row.anchor), row]
        digests: dict[str, str] = {}
        chunks: dict[str, PayloadRef] = {}
        fields: dict[str, _Field] = {}
        snapshot_row = None
        if rows[0].snap is not None and rows[0].step == row.anchor:
            snapshot_row = rows.pop(0)
            snapshot = fold.snapshot_of(snapshot_row)
            digests, chunks = dict(snapshot.digests), dict(snapshot.chunks)
            fields = {name: _Field(entry) for name, entry in snapshot.fields.items()}
        for later in rows:
            if later.format == 1:
                raise CorruptRecord(later.thread_id, later.step, "a format-1 record inside a fold")
            for name, change in later.changes.items():
                digest = advance(digests.get(name), change)
                whole = change.op in ("set", "keep") and change.ref is not None
                if whole and change.op == "keep" and chunks.get(name) == change.ref:
                    digests[name] = str(digest)  # the value it already has, by reference
                    continue
                if whole and change.ref is not None:
                    chunks[name] = change.ref
                else:
                    chunks.pop(name, None)
                if digest is None:
                    digests.pop(name, None)
                    fields.pop(name, None)
                elif change.op in ("set", "keep"):
                    digests[name] = digest
                    fields[name] = _Field(None, [(later, change)])
                else:
                    digests[name] = digest
                    fields.setdefault(name, _Field(None)).changes.append((later, change))
        if state_root(digests) != row.root:
            start = snapshot_row.step if snapshot_row is not None else rows[0].step
            raise CorruptRecord(
                row.thread_id,
                row.step,
                f"the state folded from step {start} does not match the record's state root "
                "(a stored change or read hint was altered)",
            )
        return _Plan(fields, snapshot_row)

    def value(self, name: str, convert: Convert | None) -> Any:
        plan = self._planned()
        source = plan.fields[name]
        entry, changes = source.entry, source.changes
        appended = all(change.op == "add" for _, change in changes)
        if entry is not None and "segs" in entry and "cnt" in entry and appended:
            return self._segmented(name, entry, changes, convert)
        try:
            value = entry_value(self.fold.payloads, name, entry) if entry is not None else None
        except PayloadCorrupted:  # merged away (an old snapshot), or corrupt: the eager read
            return _listed(self._eager_values()[name], convert)  # says which
        except (ValueError, KeyError, TypeError) as exc:
            raise self._unreadable(plan, exc) from exc
        return _listed(self.fold.fold_field(name, value, changes), convert)

    def _segmented(
        self,
        name: str,
        entry: dict[str, Any],
        changes: list[tuple[Checkpoint, Change]],
        convert: Convert | None,
    ) -> LazySequence:
        """A format-3 list only appended to since the snapshot: its segments, fetched when
        touched, then the items each row appended since."""
        plan = self._planned()
        try:
            refs = [PayloadRef.model_validate(ref) for ref in entry["segs"]]
            counts = [int(count) for count in entry["cnt"]]
            if len(refs) != len(counts) or len(entry["lv"]) != len(counts):
                raise ValueError(f"{name}: {len(refs)} segments for {len(counts)} counts")
            if sum(counts) != int(entry["n"]):
                raise ValueError(f"{name}: segments count {sum(counts)} items, not {entry['n']}")
        except (ValueError, KeyError, TypeError) as exc:
            raise self._unreadable(plan, exc) from exc
        known: dict[int, list[Any]] = {}
        for row, change in changes:
            value = self.fold.change_value(row, name, change)
            known[len(counts)] = value if isinstance(value, list) else [value]
            counts.append(len(known[len(counts)]))

        def fetch(pieces: list[int]) -> list[list[Any]]:
            try:
                found = fetch_all(self.fold.payloads, [refs[i] for i in pieces])
                return [
                    segment_items(s, counts[i], name) for s, i in zip(found, pieces, strict=True)
                ]
            except PayloadCorrupted:  # merged away (an old snapshot), or corrupt: the eager
                return self._eager_pieces(name, counts, pieces)  # read says which
            except (ValueError, KeyError, TypeError) as exc:
                raise self._unreadable(plan, exc) from exc

        return LazySequence(counts, fetch, known, convert)

    def _eager_pieces(self, name: str, counts: list[int], pieces: list[int]) -> list[list[Any]]:
        """The pieces of a list field cut from the eager read of the whole record."""
        items = self._eager_values()[name]
        if not isinstance(items, list) or len(items) != sum(counts):
            raise CorruptRecord(
                self.row.thread_id,
                self.row.step,
                f"{name}: the eager read holds another list than the snapshot counts",
            )
        starts = [sum(counts[:i]) for i in range(len(counts))]
        return [items[starts[i] : starts[i] + counts[i]] for i in pieces]

    def _eager_values(self) -> dict[str, Any]:
        with self._lock:
            if self._eager is None:
                self._eager = self.fold.materialise(self.row).values
            return self._eager

    def _unreadable(self, plan: _Plan, exc: Exception) -> CorruptRecord:
        """A snapshot's segment or entry that is not what the snapshot says, named at the
        snapshot's step as the eager read names it."""
        at = plan.snapshot_row or self.row
        return CorruptRecord(at.thread_id, at.step, f"snapshot unreadable: {exc}")
