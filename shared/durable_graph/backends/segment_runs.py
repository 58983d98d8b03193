"""A list's segments in runs merged geometrically, so a cold read fetches O(log n) objects
(`docs/record-format.md` §7, §11: snapshot format 3).

A snapshot keeps a long list as *segments*: payloads of consecutive items. Each snapshot adds
one segment of the items appended since the one before (a *level 0* segment), so without more
a thread of n steps would have n / `SNAPSHOT_EVERY` segments and a cold read would fetch them
all (158 objects at 10,000 chat turns; from S3, that many GETs). Here, as in a tiered LSM tree,
when the last `MERGE_FANIN` segments of a list are all of one level L, they are replaced by one
segment of level L + 1 holding the same items, written from the list the writer has in memory
(nothing is read back). A list of n items is then at most `MERGE_FANIN - 1` segments per
level, O(MERGE_FANIN x log n) in all, and each item is written once per level it climbs: the
amortised write amplification of segments is 1 + log_B(n / SNAPSHOT_EVERY) copies per item
(B = `MERGE_FANIN`; two at 10,000 turns with B = 8, three from 32,768 steps on).

The segments a merge replaces are *retired*: the snapshot that merged lists them, and its writer
deletes them once that snapshot's row is committed, so the store keeps one copy of each item in
segments; where the process may not delete payloads (the AWS worker) it leaves them in
`ports.leftovers` instead, and the sweeper deletes them later (`leftovers.py`). Older snapshots
may then name deleted segments: each snapshot says from which step on every snapshot is whole
(`gone_before`, the step of the latest merge that deleted anything). A reader that finds a
segment of an older snapshot missing reads that snapshot's lists as prefixes of the newest
snapshot's (a list that only grew since holds its old items first), which names O(log n)
segments too; only a list re-set since is folded from the rows instead (`records.py`). A missing
or altered segment of a snapshot that should be whole is corruption, named at its step as
before.

Each segment is salted for its thread (`{"s": thread salt, "v": [items]}`): segments are
content-addressed, and two threads holding the same items must not share one, since a writer
deletes what it retired without asking who else names it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from durable_graph.checkpoint import PayloadRef
from durable_graph.disposal import Disposal
from durable_graph.ports.leftovers import LeftoverKind

MERGE_FANIN = 8  # B: this many segments of one level become one segment of the next level
BASE_ITEMS = 64  # the nominal items of a level-0 segment (a whole list written at once is
# given the level of that many items merged: 64 x B^L)

log = logging.getLogger("durable_graph.engine")
Put = Callable[[Any], PayloadRef]  # stores one segment's JSON value, returns its ref


def thread_salt(thread_id: str) -> str:
    """The salt of a thread's segments: its own, stable (two writers racing on one step
    write the same bytes), and saying nothing of the thread id."""
    return hashlib.sha256(f"segments:{thread_id}".encode()).hexdigest()[:32]


def level_of(count: int, fanin: int) -> int:
    """The level of a segment of `count` items written whole (not by a merge)."""
    level, size = 0, BASE_ITEMS * fanin
    while count >= size:
        level, size = level + 1, size * fanin
    return level


def list_runs(
    put: Put,
    salt: str,
    items: list[Any],
    anchor: int,
    before: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], list[PayloadRef]]:
    """The format-3 entry of `items` (`segs`, `lv`, `cnt`, `n`) and the refs it retired.

    Extends `before` (the previous snapshot's entry) when it is a format-3 entry of the same
    list (same anchor: not re-set since) that `items` still starts with; otherwise writes the
    whole list as one segment (also what happens once to a list a format-1 or 2 snapshot kept:
    its segments are left as they are, for the snapshots that name them)."""
    fanin = MERGE_FANIN
    if (
        before is not None
        and "cnt" in before
        and before["a"] == anchor
        and len(items) >= int(before["n"])
    ):
        segs: list[dict[str, Any]] = list(before["segs"])
        levels: list[int] = [int(x) for x in before["lv"]]
        counts: list[int] = [int(x) for x in before["cnt"]]
        start, level = int(before["n"]), 0
    else:
        segs, levels, counts, start = [], [], [], 0
        level = level_of(len(items), fanin)
    retired: list[PayloadRef] = []
    if len(items) > start:
        pending: list[Segment] = [*segs, _Pending(put, {"s": salt, "v": items[start:]})]
        levels.append(level)
        counts.append(len(items) - start)

        def merged(first: int) -> tuple[Segment, int]:
            end = sum(counts)
            held = sum(counts[first:])
            return _Pending(put, {"s": salt, "v": items[end - held : end]}), held

        retired.extend(_merge_runs(pending, levels, counts, merged))
        segs = _written(pending)
    return {"segs": segs, "lv": levels, "cnt": counts, "n": len(items)}, retired


class _Pending:
    """A segment not written yet: a merge in the same snapshot may replace it, and a segment
    no snapshot names would be a put for nothing (and, for a dict, an object only `gc` ever
    deleted; for a list, a put and then a delete)."""

    __slots__ = ("put", "value")

    def __init__(self, put: Put, value: Any) -> None:
        self.put, self.value = put, value

    def written(self) -> dict[str, Any]:
        ref: dict[str, Any] = self.put(self.value).model_dump(mode="json")
        return ref


Segment = dict[str, Any] | _Pending  # a stored segment's ref, or one this snapshot may write


def _written(segs: list[Segment]) -> list[dict[str, Any]]:
    """The refs of `segs`, writing the pending segments that survived the merges."""
    return [s.written() if isinstance(s, _Pending) else s for s in segs]


def _merge_runs(
    segs: list[Segment],
    levels: list[int],
    counts: list[int],
    merged: Callable[[int], tuple[Segment, int]],
) -> list[PayloadRef]:
    """Merge runs of the last `MERGE_FANIN` segments of one level, in place, while there are
    any (a merge may complete a run of the next level); `merged(first)` makes the one
    segment holding what `segs[first:]` hold (pending: only the segments left at the end are
    written, `_written`), and returns it and its count. The stored refs replaced, in order
    (a pending segment replaced was never stored: nothing to retire)."""
    fanin = MERGE_FANIN
    replaced: list[PayloadRef] = []
    while len(levels) >= fanin and len(set(levels[-fanin:])) == 1:
        first = len(segs) - fanin
        ref, count = merged(first)
        replaced.extend(PayloadRef.model_validate(s) for s in segs[first:] if isinstance(s, dict))
        top = levels[-1] + 1
        del segs[first:], levels[first:], counts[first:]
        segs.append(ref)
        levels.append(top)
        counts.append(count)
    return replaced


def dict_runs(
    put: Put,
    value: dict[str, Any],
    patch: dict[str, Any] | None,
    before: Mapping[str, Any] | None,
    keys: list[list[str]] | None,
) -> tuple[dict[str, Any], list[list[str]]]:
    """The entry of a dict kept in segments of merge patches, merged in runs as a list's
    segments are (`dsegs`, `lv`, `cnt`: each segment's level and key count, `n`: the dict's
    keys), and each segment's keys in order (kept in memory by the writer, for its next
    merges).

    `patch` is what changed since the previous snapshot's entry `before` (the writer still
    holds the dict it saw, and `keys`, its segments' keys): one level-0 segment of it is
    added, then the last `MERGE_FANIN` segments of one level become one segment of the next,
    the patch of their keys (in the order they first appear) with the values `value` holds
    now (they are the last segments: no later patch changed those keys). Without a previous
    run (`patch` None: a new writer, a dict re-set, or an entry of a release before) the
    whole dict is one segment. The segments a merge replaced are not deleted: older snapshots
    still name them, and a dict's older state is not a prefix of its newer one (a key's
    value may have been replaced since), so those snapshots could not be read through a
    newer one as lists are."""
    if patch is None or before is None or keys is None or "cnt" not in before:
        segs: list[dict[str, Any]] = []
        levels: list[int] = []
        counts: list[int] = []
        held: list[list[str]] = []
        patch, level = value, level_of(len(value), MERGE_FANIN)
    else:
        segs, held = list(before["dsegs"]), list(keys)
        levels, counts = [int(x) for x in before["lv"]], [int(x) for x in before["cnt"]]
        level = 0
    if patch:
        pending: list[Segment] = [*segs, _Pending(put, patch)]
        levels.append(level)
        counts.append(len(patch))
        held.append(list(patch))

        def merged(first: int) -> tuple[Segment, int]:
            names = list(dict.fromkeys(name for part in held[first:] for name in part))
            del held[first:]
            held.append(names)
            return _Pending(put, {name: value[name] for name in names}), len(names)

        _merge_runs(pending, levels, counts, merged)
        segs = _written(pending)
    entry = {"dsegs": segs, "lv": levels, "cnt": counts, "n": len(value)}
    return entry, held


def retirement(
    step: int,
    fields: Mapping[str, Mapping[str, Any]],
    retired: list[PayloadRef],
    gone_before: int,
) -> tuple[dict[str, Any], tuple[PayloadRef, ...]]:
    """A snapshot document's `retired` (what its merges replaced) and `gone_before` (from the
    previous snapshot's), and what may be deleted once the snapshot is committed: what it
    retired, less any segment it still names (the same items salted alike)."""
    if not retired:
        return {"retired": [], "gone_before": gone_before}, ()
    named = {str(s["sha256"]) for entry in fields.values() for s in entry.get("segs", ())}
    deletable = tuple(ref for ref in retired if ref.sha256 not in named)
    document = {
        "retired": [ref.model_dump(mode="json") for ref in retired],
        "gone_before": step if deletable else gone_before,
    }
    return document, deletable


def prefix_refs(entry: Mapping[str, Any], count: int) -> list[dict[str, Any]] | None:
    """The refs of the first segments of a format-3 list entry that hold its first `count`
    items (an older snapshot's list, when the list only grew since), or None if it has fewer."""
    if "cnt" not in entry or int(entry["n"]) < count:
        return None
    refs, held = [], 0
    for ref, items in zip(entry["segs"], entry["cnt"], strict=True):
        if held >= count:
            break
        refs.append(ref)
        held += int(items)
    return refs


class Retirements:
    """The segments merges retired, let go (`disposal.Disposal`: deleted, or left for the
    sweeper where the process may not delete) once the step whose snapshot replaced them is
    committed: at once when the append was not inside a unit of work (it is committed), else
    when the outermost unit of this thread commits; dropped if it rolls back (the row naming
    their replacement was never stored, so the snapshots naming them are the newest). A
    failed delete or leave costs storage, never correctness (logged)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def retire(
        self,
        disposal: Disposal,
        refs: Sequence[PayloadRef],
        *,
        thread_id: str,
        step: int,
        kind: LeftoverKind = "retired",
    ) -> None:
        """Let `refs` go once step `step` of `thread_id` is committed: the segments its
        snapshot's merges `retired`, or (`lost`) the snapshot a lost append wrote."""
        if not refs or not disposal.active:
            return
        what = RETIRED if kind == "retired" else "a lost append's snapshot"
        let_go = functools.partial(
            disposal.let_go, refs, what, thread_id=thread_id, step=step, kind=kind
        )
        pending: list[Callable[[], None]] | None = getattr(self._local, "pending", None)
        if pending is None:
            _run(let_go)
        else:
            pending.append(let_go)

    def open_unit(self) -> list[Callable[[], None]] | None:
        """Start a backend's unit of work (`record_units.py`): what is retired inside it waits
        for its commit, in the list returned, to hand to `close_unit`; None when this thread's
        unit is nested (the outermost commits). Two calls rather than a generator context
        manager: every commit of a step opens one (about 10,000 instructions each as one)."""
        if getattr(self._local, "pending", None) is not None:
            return None
        pending: list[Callable[[], None]] = []
        self._local.pending = pending
        return pending

    def close_unit(self, pending: list[Callable[[], None]], *, committed: bool) -> None:
        """End the unit `open_unit` started: let its retired segments go iff it committed."""
        self._local.pending = None
        if committed:
            for let_go in pending:
                _run(let_go)


RETIRED = "retired snapshot segments"


def _run(let_go: Callable[[], None]) -> None:
    """After a commit: whatever fails here (a store error the driver did not translate), the
    segments stay and the step stands; a reader never needs them."""
    try:
        let_go()
    except Exception:
        log.warning("could not let %s go", RETIRED, exc_info=True)


def run_items(segments: Sequence[Any], entry: Mapping[str, Any], name: str) -> list[Any]:
    """The items of a format-3 list entry from its segments' values, each checked to be the
    salted list its entry counts."""
    counts = entry["cnt"]
    if len(segments) != len(counts) or len(entry["lv"]) != len(counts):
        raise ValueError(f"{name}: {len(segments)} segments for {len(counts)} counts")
    items: list[Any] = []
    for segment, count in zip(segments, counts, strict=True):
        items.extend(segment_items(segment, count, name))
    return items


def segment_items(segment: Any, count: int, name: str) -> list[Any]:
    """The items of one format-3 list segment, checked to be the salted list of `count`."""
    value = segment.get("v") if type(segment) is dict else None
    if type(value) is not list or len(value) != count:
        raise ValueError(f"{name}: a segment is not the salted list of {count} items")
    return value


__all__ = [
    "BASE_ITEMS",
    "MERGE_FANIN",
    "Retirements",
    "dict_runs",
    "level_of",
    "list_runs",
    "prefix_refs",
    "retirement",
    "run_items",
    "segment_items",
    "thread_salt",
]
