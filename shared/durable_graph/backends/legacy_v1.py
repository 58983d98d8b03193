"""Reading records of format 1, the format before `docs/record-format.md`'s format 2.

Format-1 records hold the whole state in `values` (strings over 8 KB as `$payload` refs), and the
earlier `DeltaStore` stored them as `$delta` documents against the previous step:

- `set`: fields stored whole (changed ones, and every 32 steps the small unchanged ones);
- `add`: items appended to a list field; `merge`: keys added or changed in a dict field;
- `del`: fields that disappeared; `from`: the oldest step a reader must start folding from;
- `parent: "previous"` for a derivable parent, and `io` pointers to replies kept once.

Their hash covers the whole logical record. Stores written then stay readable and verifiable:
this reader rebuilds their full `values` exactly as `DeltaStore` did (the hash check then proves
it). Nothing writes format 1 any more; a thread that continues under format 2 starts its first
format-2 record by setting every field.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from durable_graph.checkpoint import Checkpoint, ParentRef
from durable_graph.ports.checkpoint_store import CheckpointStore

DELTA = "$delta"
Finish = Callable[[Checkpoint], Checkpoint]


def is_delta(values: dict[str, Any]) -> bool:
    return len(values) == 1 and DELTA in values


class LegacyReader:
    """Rebuilds format-1 records from the rows an inner store holds (no cache: format-1
    threads are history, read by audits, not by the hot path)."""

    def __init__(self, inner: CheckpointStore) -> None:
        self.inner = inner

    def decode_one(self, row: Checkpoint, finish: Finish) -> Checkpoint:
        return self.decode([row], finish)[-1]

    def decode(self, rows: Sequence[Checkpoint], finish: Finish) -> list[Checkpoint]:
        """Consecutive format-1 rows, oldest first, rebuilt (earlier rows read as needed)."""
        if not rows:
            return []
        first = rows[0]
        start = start_of(first)
        earlier: list[Checkpoint] = []
        if start < first.step:
            earlier = self.inner.list_checkpoints(
                first.thread_id, newest_first=True, before_step=first.step, limit=first.step - start
            )
            earlier.reverse()
        return [finish(r) for r in fold([*earlier, *rows], keep=len(rows))]


def fold(rows: Sequence[Checkpoint], keep: int | None = None) -> list[Checkpoint]:
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
    return out


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


def _resolve(doc: dict[str, Any], path: Any) -> Any:
    """The value at `path` in the delta; None for a malformed path (its hash then fails)."""
    if not isinstance(path, list) or len(path) < 2:
        return None
    section = _mapping(doc.get(path[0])).get(path[1]) if isinstance(path[1], str) else None
    if path[0] == "add" and len(path) == 3 and isinstance(section, list):
        index = path[2]
        return section[index] if isinstance(index, int) and 0 <= index < len(section) else None
    return section if path[0] == "set" and len(path) == 2 else None


__all__ = ["LegacyReader", "fold", "is_delta"]
