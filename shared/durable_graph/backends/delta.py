"""Delta-encoded checkpoints: storage that grows with what each step *adds*, not with the state.

`DeltaStore(inner)` wraps any `CheckpointStore` and keeps its Protocol. Callers always read and
write full logical checkpoints, whose `hash` covers the full logical state; only the stored
form changes. Once a thread's state is bigger than `min_state_bytes`, a record is stored with
`values` replaced by `{"$delta": {...}}` against the previous step:

- `set`: fields whose value changed (and, every `snapshot_every` steps, every field that is
  not a large accumulating list or dict, so reading a past state needs a bounded chain);
- `add`: list fields whose new value starts with the old one (reducers such as `operator.add`):
  only the appended items;
- `merge`: dict fields that only gained or changed keys: only those keys;
- `del`: fields that disappeared;
- `from`: the oldest step a reader must start from to rebuild this record (the oldest step at
  which some field was last stored whole).

Unchanged fields are never written again, a derivable `parent` (the previous step of the
same thread) is not stored either, and a recorded external reply (`io`) that the step also put
into the state is stored once, as a pointer from `io` into the delta. Small states are stored
whole: a delta would save little and a plain row is easier to inspect.

A per-thread write-through cache of the last full values means the hot path (append step k+1
right after step k in the same process) needs no extra read. `list_checkpoints` never uses the
cache: it rebuilds from storage, so `verify` sees exactly what is stored, and any change to a
stored delta changes the rebuilt record and so fails its hash.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from durable_graph.canonical import compact_json
from durable_graph.checkpoint import Checkpoint, ParentRef, ThreadRecord, VersionedRecord
from durable_graph.errors import StepConflict
from durable_graph.ports import CheckpointStore

DELTA = "$delta"
SNAPSHOT_EVERY = 32
MIN_STATE_BYTES = 2048
LARGE_FIELD_BYTES = 2048
CACHE_THREADS = 256


@dataclass(frozen=True)
class _Full:
    """The logical values of one step, and for each field the step it was last stored whole."""

    step: int
    hash: str
    values: dict[str, Any]
    anchors: dict[str, int]


def is_delta(values: dict[str, Any]) -> bool:
    return len(values) == 1 and DELTA in values


def same(a: Any, b: Any) -> bool:
    """JSON equality that, unlike `==`, tells `1`, `1.0` and `True` apart."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def encode_values(
    previous: _Full, values: dict[str, Any], step: int, *, snapshot: bool
) -> tuple[dict[str, Any], dict[str, int]]:
    """The delta document from `previous` to `values`, and the anchors after this step."""
    old = previous.values
    anchors = {k: v for k, v in previous.anchors.items() if k in values}
    sets: dict[str, Any] = {}
    adds: dict[str, list[Any]] = {}
    merges: dict[str, dict[str, Any]] = {}
    for key, new in values.items():
        if key not in old:
            sets[key] = new
            continue
        before = old[key]
        if same(before, new):
            if snapshot and not _large_accumulator(new):
                sets[key] = new
            continue
        if (
            isinstance(before, list)
            and isinstance(new, list)
            and len(new) > len(before)
            and all(same(x, y) for x, y in zip(before, new, strict=False))
        ):
            adds[key] = new[len(before) :]
        elif (
            isinstance(before, dict)
            and isinstance(new, dict)
            and before.keys() <= new.keys()
            and "$payload" not in new
        ):
            merges[key] = {
                k: v for k, v in new.items() if k not in before or not same(before[k], v)
            }
        else:
            sets[key] = new
            continue
        if snapshot and not _large_accumulator(new):
            sets[key] = new
            adds.pop(key, None)
            merges.pop(key, None)
    for key in sets:
        anchors[key] = step
    doc: dict[str, Any] = {}
    if sets:
        doc["set"] = sets
    if adds:
        doc["add"] = adds
    if merges:
        doc["merge"] = merges
    removed = [k for k in old if k not in values]
    if removed:
        doc["del"] = removed
    doc["from"] = min(anchors.values(), default=step)
    return doc, anchors


def _large_accumulator(value: Any) -> bool:
    """Lists and dicts above a few KB are never re-stored whole: that is what grows."""
    return isinstance(value, list | dict) and len(compact_json(value)) > LARGE_FIELD_BYTES


def apply_delta(
    values: dict[str, Any],
    anchors: dict[str, int],
    doc: dict[str, Any],
    step: int,
    owned: set[str] | None = None,
) -> None:
    """Fold one stored delta into `values` in place. Never raises on a malformed delta: a
    tampered record rebuilds to different values, which its hash then rejects.

    Lists and dicts are copied before they grow, so values handed out earlier never change;
    fields named in `owned` were built by this fold and nobody else holds them, so they grow in
    place (rebuilding a long list stays linear, not quadratic).
    """
    for key, value in _mapping(doc.get("set")).items():
        values[key] = value
        anchors[key] = step
        if owned is not None:
            owned.discard(key)
    for key, items in _mapping(doc.get("add")).items():
        extra = items if isinstance(items, list) else [items]
        before = values.get(key)
        if owned is not None and key in owned and isinstance(before, list):
            before.extend(extra)
            continue
        values[key] = (before if isinstance(before, list) else []) + extra
        if owned is not None:
            owned.add(key)
    for key, patch in _mapping(doc.get("merge")).items():
        before = values.get(key)
        if owned is not None and key in owned and isinstance(before, dict):
            before.update(_mapping(patch))
            continue
        values[key] = {**(before if isinstance(before, dict) else {}), **_mapping(patch)}
        if owned is not None:
            owned.add(key)
    removed = doc.get("del")
    for key in removed if isinstance(removed, list) else []:
        if isinstance(key, str):
            values.pop(key, None)
            anchors.pop(key, None)
            if owned is not None:
                owned.discard(key)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class DeltaStore:
    """A `CheckpointStore` that stores deltas in `inner` and returns full checkpoints."""

    def __init__(
        self,
        inner: CheckpointStore,
        *,
        snapshot_every: int = SNAPSHOT_EVERY,
        min_state_bytes: int = MIN_STATE_BYTES,
        cache_threads: int = CACHE_THREADS,
    ) -> None:
        self.inner = inner
        self.snapshot_every = snapshot_every
        self.min_state_bytes = min_state_bytes
        self.cache_threads = cache_threads
        self._cache: OrderedDict[str, _Full] = OrderedDict()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ checkpoints

    def append_checkpoint(self, checkpoint: Checkpoint) -> None:
        stored, full = self.encode(checkpoint)
        try:
            self.inner.append_checkpoint(stored)
        except StepConflict as conflict:
            winner = conflict.existing
            decoded = self.decode_one(winner) if isinstance(winner, Checkpoint) else winner
            raise StepConflict(checkpoint.thread_id, checkpoint.step, decoded) from conflict
        self._remember(checkpoint.thread_id, full)

    def get_checkpoint(self, thread_id: str, step: int) -> Checkpoint | None:
        row = self.inner.get_checkpoint(thread_id, step)
        return self.decode_one(row) if row is not None else None

    def head_checkpoint(self, thread_id: str) -> Checkpoint | None:
        row = self.inner.head_checkpoint(thread_id)
        return self.decode_one(row) if row is not None else None

    def list_checkpoints(
        self,
        thread_id: str,
        *,
        newest_first: bool = True,
        before_step: int | None = None,
        limit: int | None = None,
    ) -> list[Checkpoint]:
        rows = self.inner.list_checkpoints(
            thread_id, newest_first=newest_first, before_step=before_step, limit=limit
        )
        if newest_first:
            rows.reverse()
        if not rows:
            return []
        start = start_of(rows[0])
        if start < rows[0].step:
            earlier = self.inner.list_checkpoints(
                thread_id, newest_first=True, before_step=rows[0].step, limit=rows[0].step - start
            )
            decoded = self.fold([*reversed(earlier), *rows], keep=len(rows))
        else:
            decoded = self.fold(rows)
        return list(reversed(decoded)) if newest_first else decoded

    # ------------------------------------------------------------------ delegated

    def get_thread(self, thread_id: str) -> ThreadRecord | None:
        return self.inner.get_thread(thread_id)

    def put_thread(self, record: ThreadRecord, *, expected_revision: int | None) -> ThreadRecord:
        return self.inner.put_thread(record, expected_revision=expected_revision)

    def list_threads(self, *, status: str | None = None, limit: int = 1000) -> list[ThreadRecord]:
        return self.inner.list_threads(status=status, limit=limit)

    def get_record(self, thread_id: str, key: str) -> VersionedRecord | None:
        return self.inner.get_record(thread_id, key)

    def put_record(
        self, thread_id: str, key: str, value: dict[str, Any], *, expected_version: int | None
    ) -> VersionedRecord:
        return self.inner.put_record(thread_id, key, value, expected_version=expected_version)

    def close(self) -> None:
        closer = getattr(self.inner, "close", None)
        if callable(closer):
            closer()

    def get_records(self, thread_id: str, keys: Sequence[str]) -> dict[str, VersionedRecord]:
        return self.inner.get_records(thread_id, keys)

    def complete_task(
        self, thread_id: str, counter_key: str, member_key: str, value: dict[str, Any]
    ) -> tuple[bool, int]:
        return self.inner.complete_task(thread_id, counter_key, member_key, value)

    # ------------------------------------------------------------------ encoding

    def encode(self, checkpoint: Checkpoint) -> tuple[Checkpoint, _Full]:
        """The stored form of `checkpoint` and the full values to remember after writing it."""
        values = checkpoint.values
        whole = _Full(
            checkpoint.step, checkpoint.hash, values, dict.fromkeys(values, checkpoint.step)
        )
        if checkpoint.step == 0 or len(compact_json(values)) <= self.min_state_bytes:
            return checkpoint, whole
        previous = self._previous(checkpoint)
        if previous is None:
            return checkpoint, whole
        snapshot = checkpoint.step % self.snapshot_every == 0
        doc, anchors = encode_values(previous, values, checkpoint.step, snapshot=snapshot)
        update: dict[str, Any] = {"values": {DELTA: doc}}
        if checkpoint.parent is not None and checkpoint.parent == _derived_parent(checkpoint):
            doc["parent"] = "previous"  # the previous step of this thread: not stored again
            update["parent"] = None
        stored_io = list(checkpoint.io)
        io_refs: dict[str, list[Any]] = {}
        for index, io in enumerate(checkpoint.io):
            path = _find(doc, io.response) if io.response is not None else None
            if path is not None:  # a recorded reply the step also put into the state
                io_refs[str(index)] = path
                stored_io[index] = io.model_copy(update={"response": None})
        if io_refs:
            doc["io"] = io_refs
            update["io"] = stored_io
        full = _Full(checkpoint.step, checkpoint.hash, values, anchors)
        return checkpoint.model_copy(update=update), full

    def _previous(self, checkpoint: Checkpoint) -> _Full | None:
        """Step `k-1` in full, from the cache or else rebuilt from storage."""
        with self._lock:
            cached = self._cache.get(checkpoint.thread_id)
        if cached is not None and cached.step == checkpoint.step - 1:
            return cached if cached.hash == checkpoint.prev_hash else None
        row = self.inner.get_checkpoint(checkpoint.thread_id, checkpoint.step - 1)
        if row is None or row.hash != checkpoint.prev_hash:
            return None
        self.decode_one(row)
        with self._lock:
            cached = self._cache.get(checkpoint.thread_id)
        return cached if cached is not None and cached.hash == row.hash else None

    # ------------------------------------------------------------------ decoding

    def decode_one(self, row: Checkpoint) -> Checkpoint:
        if not is_delta(row.values):
            self._remember(
                row.thread_id,
                _Full(row.step, row.hash, row.values, dict.fromkeys(row.values, row.step)),
            )
            return row
        with self._lock:
            cached = self._cache.get(row.thread_id)
        if cached is not None and cached.step == row.step and cached.hash == row.hash:
            return _restore(row, cached.values)
        if cached is not None and cached.step == row.step - 1 and cached.hash == row.prev_hash:
            values = dict(cached.values)
            anchors = dict(cached.anchors)
            apply_delta(values, anchors, _mapping(row.values[DELTA]), row.step)
            self._remember(row.thread_id, _Full(row.step, row.hash, values, anchors))
            return _restore(row, values)
        start = start_of(row)
        earlier = (
            self.inner.list_checkpoints(
                row.thread_id, newest_first=True, before_step=row.step, limit=row.step - start
            )
            if start < row.step
            else []
        )
        return self.fold([*reversed(earlier), row], keep=1)[-1]

    def fold(self, rows: Sequence[Checkpoint], keep: int | None = None) -> list[Checkpoint]:
        """Rebuild consecutive stored rows, oldest first (the first must be a valid start);
        return the last `keep` of them (all by default)."""
        values: dict[str, Any] = {}
        anchors: dict[str, int] = {}
        out: list[Checkpoint] = []
        first_kept = 0 if keep is None else len(rows) - keep
        owned: set[str] | None = set()
        for index, row in enumerate(rows):
            if index >= first_kept:
                owned = None  # from here on every rebuilt record is handed out: copy, never grow
            if is_delta(row.values):
                if owned is None:
                    values = dict(values)
                apply_delta(values, anchors, _mapping(row.values[DELTA]), row.step, owned)
            else:
                values = dict(row.values)
                anchors = dict.fromkeys(values, row.step)
                if owned is not None:
                    owned.clear()
            if index >= first_kept:
                out.append(_restore(row, values))
        if rows:
            last = rows[-1]
            self._remember(last.thread_id, _Full(last.step, last.hash, values, dict(anchors)))
        return out

    def _remember(self, thread_id: str, full: _Full) -> None:
        with self._lock:
            cached = self._cache.get(thread_id)
            if cached is not None and cached.step > full.step:
                return
            self._cache[thread_id] = full
            self._cache.move_to_end(thread_id)
            while len(self._cache) > self.cache_threads:
                self._cache.popitem(last=False)


def start_of(row: Checkpoint) -> int:
    if not is_delta(row.values):
        return row.step
    start = _mapping(row.values[DELTA]).get("from")
    return start if isinstance(start, int) and 0 <= start <= row.step else 0


def _derived_parent(checkpoint: Checkpoint) -> ParentRef | None:
    if checkpoint.step == 0:
        return None
    return ParentRef(
        thread_id=checkpoint.thread_id, step=checkpoint.step - 1, hash=checkpoint.prev_hash
    )


def _restore(row: Checkpoint, values: dict[str, Any]) -> Checkpoint:
    if not is_delta(row.values):
        return row
    doc = _mapping(row.values[DELTA])
    update: dict[str, Any] = {"values": values}
    if doc.get("parent") == "previous":
        update["parent"] = _derived_parent(row)
    io_refs = _mapping(doc.get("io"))
    if io_refs:
        restored = list(row.io)
        for index, path in io_refs.items():
            position = int(index) if index.isdigit() else -1
            if 0 <= position < len(restored):
                response = _resolve(doc, path)
                restored[position] = restored[position].model_copy(update={"response": response})
        update["io"] = restored
    return row.model_copy(update=update)


def _find(doc: dict[str, Any], response: Any) -> list[Any] | None:
    """Where in this step's delta the same value is stored (an appended item or a set field)."""
    for key, items in _mapping(doc.get("add")).items():
        for index, item in enumerate(items):
            if same(item, response):
                return ["add", key, index]
    for key, value in _mapping(doc.get("set")).items():
        if same(value, response):
            return ["set", key]
    return None


def _resolve(doc: dict[str, Any], path: Any) -> Any:
    """The value at `path` in the delta; None for a malformed path (its hash then fails)."""
    if not isinstance(path, list) or len(path) < 2:
        return None
    section = _mapping(doc.get(path[0])).get(path[1]) if isinstance(path[1], str) else None
    if path[0] == "add" and len(path) == 3 and isinstance(section, list):
        index = path[2]
        return section[index] if isinstance(index, int) and 0 <= index < len(section) else None
    return section if path[0] == "set" and len(path) == 2 else None


__all__ = ["DeltaStore", "apply_delta", "encode_values", "is_delta", "same"]
