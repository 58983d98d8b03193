"""State snapshots: how a cold read of a long thread stays bounded (`docs/record-format.md` §7).

A field that grows by appends (a chat history) is never re-set, so without help a cold read
folds every row since the thread began. Every `SNAPSHOT_EVERY` steps at most, when a record's
fold would start that far back, the `RecordStore` writes a *snapshot* of the state after that
step to the payload store and names it in the row (`snap`, an unhashed read hint like
`anchor`). Later rows set `anchor` to the snapshot's step, so a cold read is: the rows from the
snapshot to the head (one range read of at most `SNAPSHOT_EVERY` rows), the snapshot, and its
segments.

A snapshot costs what changed since the previous one, not what the state weighs: a list kept
in *segments* (payloads of consecutive items) gains one segment of the items appended since,
and its segments are merged in runs so that there are O(log n) of them (`segment_runs.py`);
whole-value chunks are kept by reference; small values inline. A list is kept in segments
once it has `SEGMENT_MIN_ITEMS` items or its JSON is over `SEGMENT_MIN_BYTES` (a few
documents of megabytes). A dict that big is kept in segments of merge patches (`dsegs`),
merged in runs too (`segment_runs.dict_runs`): the writer's snapshot remembers, in memory,
the dict it saw and its segments' keys, and the next one adds a segment of the keys added or
replaced since (found by comparing the two, mostly by identity: a merge shares the unchanged
values); a writer without it (a new process) writes the whole dict as one segment once.
Segments written before merged runs (a list's in snapshot formats 1 and 2, a dict's until
dict runs) were listed in *pages* of 64 refs (`pages`, `dpages`), which still read. Only a
long string, or a big value that is neither a list, a dict nor a whole chunk, is copied
whole into each snapshot.

A snapshot is never trusted more than a stored row: its field digests must give the snapshot
row's state root (a snapshot of another step or thread is refused), and the fold from it must
give the head row's root. `verify` never reads snapshots; it folds the changes themselves.

A snapshot names its format (`SNAPSHOT_FORMAT`; none: format 1, written before formats were
named). A reader refuses a format it does not know, and an entry with a key or a form it does
not know, with `SnapshotFormatError` (the record store turns it into `UnsupportedFormat`,
naming the thread and step): never a missing value. Releases before formats were named read an
entry they did not know (a dict in `dsegs`, once) as a missing value; any new kind of entry
bumps the format, so that this release and later ones refuse instead.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import zstandard
from pydantic_core import from_json

from durable_graph.backends.segment_runs import (
    dict_runs,
    list_runs,
    prefix_refs,
    retirement,
    run_items,
)
from durable_graph.canonical import compact_json, json_size_within
from durable_graph.changes import dict_patch
from durable_graph.checkpoint import PayloadRef
from durable_graph.payload_batches import get_many
from durable_graph.ports.payload_store import PayloadStore

SNAPSHOT_EVERY = 64  # steps; the longest fold a cold read does once a thread has snapshots
SEGMENT_MIN_ITEMS = 64  # a shorter list is kept inline in the snapshot, unless it is big:
SEGMENT_MIN_BYTES = 64 * 1024  # a few documents of megabytes are segments too
# Compressed JSON: a segment is a second copy of what the rows hold, so it is kept as small as
# it cheaply can be. Segments and pages are zstd (a cold read of a long thread inflates every
# segment: zstd inflates 1 KB-per-turn chat text about 5x faster than zlib, into 0.41 of its
# size against zlib's 0.45); the snapshot document itself, small, stays zlib. Segments and
# pages written as zlib by earlier releases read the same (told apart by their first bytes).
SNAPSHOT_CONTENT_TYPE = "application/vnd.durable-graph.snapshot+json+zlib"
SEGMENT_CONTENT_TYPE = "application/vnd.durable-graph.segment+json+zstd"
ZSTD_LEVEL = 3  # higher levels gain under 1% on chat text and cost the writer more
# 1: no `format` key (entries `v`, `ref`, `segs`/`pages`, from ab55fe9 `dsegs`/`dpages` too);
# 2: the same entries, the format named; 3: lists in merged runs of salted segments (`lv`,
# `cnt`: `segment_runs.py`) and the document's `retired` and `gone_before`; since dict runs
# a dict's entry may carry `lv` and `cnt` too (its patches merged in runs; a reader before
# them applies the patches in order, which gives the same dict: no new format).
# A reader reads the formats it knows, refuses others.
SNAPSHOT_FORMAT = 3
READS_FORMATS = (1, 2, 3)
_DOCUMENT_KEYS = frozenset({"format", "step", "fields", "retired", "gone_before"})
_ENTRY_KEYS = frozenset(
    {"d", "a", "v", "ref", "segs", "pages", "dsegs", "dpages", "n", "lv", "cnt"}
)
_FORMS = ("v", "ref", "segs", "dsegs")  # exactly one of these says how a value is kept
_local = threading.local()
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # the first bytes of a zstd frame (a zlib stream: 0x78)


class SnapshotFormatError(Exception):
    """A snapshot in a format, or with an entry, this release does not read (written by a
    newer release). Not a `ValueError`: nothing may take it for a missing or corrupt value."""


@dataclass(frozen=True)
class Snapshot:
    """The state after `step`, as a snapshot payload describes it (values not yet loaded)."""

    step: int
    ref: PayloadRef
    fields: dict[str, dict[str, Any]]
    # In memory only, for the writer's next snapshot: each dict kept in segments, as it was
    # here (the same object the state held: the next snapshot finds what changed since by
    # comparing, mostly by identity). Empty for a snapshot read back from the store.
    dicts: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False, repr=False)
    # In memory only, with `dicts`: the keys of each of those dicts' segments, in order (what
    # the next snapshot's merges of segments write, `segment_runs.dict_runs`).
    dict_keys: dict[str, list[list[str]]] = field(default_factory=dict, compare=False, repr=False)
    # The segments this snapshot's merges replaced (deleted once it is committed, where the
    # process may); every snapshot before step `gone_before` may name deleted segments.
    retired: list[dict[str, Any]] = field(default_factory=list)
    gone_before: int = 0
    # In memory only: what the writer deletes once this snapshot's row is committed.
    deletable: tuple[PayloadRef, ...] = field(default=(), compare=False, repr=False)

    @property
    def digests(self) -> dict[str, str]:
        return {name: str(entry["d"]) for name, entry in self.fields.items()}

    @property
    def anchors(self) -> dict[str, int]:
        return {name: int(entry["a"]) for name, entry in self.fields.items()}

    @property
    def chunks(self) -> dict[str, PayloadRef]:
        return {
            name: PayloadRef.model_validate(entry["ref"])
            for name, entry in self.fields.items()
            if "ref" in entry
        }


def write_snapshot(
    payloads: PayloadStore,
    *,
    step: int,
    values: Mapping[str, Any],
    digests: Mapping[str, str],
    anchors: Mapping[str, int],
    chunks: Mapping[str, PayloadRef],
    previous: Snapshot | None,
    salt: str,
) -> Snapshot:
    """Store the snapshot of the state after `step`, extending `previous` where a list only
    grew since (its segments merged in runs, `segment_runs.py`; `salt` the thread's), and
    return it."""
    fields: dict[str, dict[str, Any]] = {}
    dicts: dict[str, dict[str, Any]] = {}
    dict_keys: dict[str, list[list[str]]] = {}
    retired: list[PayloadRef] = []

    def put(value: Any) -> PayloadRef:
        return payloads.put(_pack(value), SEGMENT_CONTENT_TYPE)

    for name, value in values.items():
        entry: dict[str, Any] = {"d": digests[name], "a": anchors.get(name, step)}
        big = isinstance(value, list | dict) and (
            len(value) >= SEGMENT_MIN_ITEMS or not json_size_within(value, SEGMENT_MIN_BYTES)
        )
        if name in chunks:
            entry["ref"] = chunks[name].model_dump(mode="json")
        elif big and isinstance(value, list):
            before = previous.fields.get(name) if previous is not None else None
            runs, replaced = list_runs(put, salt, value, entry["a"], before)
            entry.update(runs)
            retired.extend(replaced)
        elif big and isinstance(value, dict):
            runs, dict_keys[name] = _dict_segments(payloads, name, value, entry["a"], previous)
            entry.update(runs)
            dicts[name] = value
        else:
            entry["v"] = value
        fields[name] = entry
    gone_before = previous.gone_before if previous is not None else 0
    merges, deletable = retirement(step, fields, retired, gone_before)
    document = {"format": SNAPSHOT_FORMAT, "step": step, "fields": fields, **merges}
    ref = payloads.put(_pack(document, zstd=False), SNAPSHOT_CONTENT_TYPE)
    return Snapshot(step, ref, fields, dicts, dict_keys, **merges, deletable=deletable)


def read_snapshot(payloads: PayloadStore, ref: PayloadRef) -> Snapshot:
    """The snapshot under `ref` (its bytes are checked against `ref.sha256` by the store);
    `SnapshotFormatError` if it is in a format, or holds an entry, this release does not read."""
    doc = _unpack(payloads.get(ref))
    if not isinstance(doc, dict) or not isinstance(doc.get("fields"), dict):
        raise ValueError("not a snapshot document")
    return Snapshot(
        int(doc["step"]),
        ref,
        _known(doc, ref),
        retired=list(doc.get("retired") or []),
        gone_before=int(doc.get("gone_before") or 0),
    )


def _known(doc: dict[str, Any], ref: PayloadRef) -> dict[str, dict[str, Any]]:
    """The snapshot's fields, each checked to be kept in a form this release reads."""
    where = f"snapshot {ref.sha256[:12]}"
    found = doc.get("format", 1)
    unknown = sorted(set(doc) - _DOCUMENT_KEYS)
    if found not in READS_FORMATS or type(found) is not int or unknown:
        what = f"keys {unknown}" if unknown else f"format {found!r}"
        raise SnapshotFormatError(
            f"{where} has {what}; this release reads snapshot formats "
            f"{', '.join(map(str, READS_FORMATS))}: it was written by a newer release of "
            "durable-graph (upgrade to read this thread)"
        )
    fields: dict[str, dict[str, Any]] = dict(doc["fields"])
    for name, entry in fields.items():
        keys = set(entry) if isinstance(entry, dict) else set()
        forms = [key for key in _FORMS if key in keys]
        if len(forms) != 1 or keys - _ENTRY_KEYS or not isinstance(entry, dict):
            raise SnapshotFormatError(
                f"{where} keeps field {name!r} as {sorted(keys) or type(entry).__name__}, "
                f"which this release does not read (one of {', '.join(_FORMS)} with "
                f"{', '.join(sorted(_ENTRY_KEYS - set(_FORMS)))}): written by a newer release "
                "of durable-graph (upgrade to read this thread)"
            )
    return fields


def snapshot_values(
    payloads: PayloadStore, snapshot: Snapshot, newer: Snapshot | None = None
) -> dict[str, Any]:
    """The snapshot's values, segments and chunks fetched (each checked by its digest).
    `newer`: a later snapshot of the thread, whose segments hold this one's lists as prefixes
    (this one's were merged away, `segment_runs.py`); `ListReset` if a list was re-set since."""
    values: dict[str, Any] = {}
    for name, entry in snapshot.fields.items():
        if "dsegs" in entry:
            merged: dict[str, Any] = {}
            patches = _fetch_all(payloads, _segment_refs(payloads, entry, DICT_KEYS))
            counts = entry.get("cnt")  # merged runs: each patch's key count
            if counts is not None and [len(_shaped(p, dict, name)) for p in patches] != counts:
                raise ValueError(f"{name}: segments are not the patches of {counts} keys")
            for patch in patches:
                merged.update(_shaped(patch, dict, name))  # replaced keys stay where they were
            if len(merged) != entry["n"]:
                raise ValueError(f"{name}: segments hold {len(merged)} keys, not {entry['n']}")
            values[name] = merged
        elif "segs" in entry and "cnt" in entry:
            values[name] = _run_list(payloads, name, entry, newer)
        elif "segs" in entry:
            items = []
            for segment in _fetch_all(payloads, _segment_refs(payloads, entry)):
                items.extend(_shaped(segment, list, name))
            if len(items) != entry["n"]:
                raise ValueError(f"{name}: segments hold {len(items)} items, not {entry['n']}")
            values[name] = items
        elif "ref" in entry:
            chunk = json.loads(payloads.get(PayloadRef.model_validate(entry["ref"])))
            values[name] = chunk.get("v") if isinstance(chunk, dict) else None
        else:
            values[name] = entry.get("v")
    return values


class ListReset(Exception):
    """A list of an older snapshot that a newer one does not hold as a prefix (re-set since)."""


def _run_list(
    payloads: PayloadStore, name: str, entry: Mapping[str, Any], newer: Snapshot | None
) -> list[Any]:
    """A format-3 list entry's items: from its own segments, or the first of `newer`'s."""
    count, source = int(entry["n"]), entry
    if newer is not None:
        later = newer.fields.get(name)
        same = later is not None and later.get("a") == entry["a"]
        refs = prefix_refs(later, count) if later is not None and same else None
        if later is None or refs is None:
            raise ListReset(name)
        source = {"segs": refs, "cnt": later["cnt"][: len(refs)], "lv": later["lv"][: len(refs)]}
    items = run_items(_fetch_all(payloads, _segment_refs(payloads, source)), source, name)
    del items[count:]
    if len(items) != count:
        raise ValueError(f"{name}: segments hold {len(items)} items, not {count}")
    return items


def snapshot_refs(payloads: PayloadStore, snapshot: Snapshot) -> list[PayloadRef]:
    """Every payload a snapshot names: its lists' pages and segments, and whole-value chunks
    (what erasure must find before it deletes a snapshot, `erasure.py`)."""
    refs: list[PayloadRef] = []
    for entry in snapshot.fields.values():
        keys = DICT_KEYS if "dsegs" in entry else LIST_KEYS
        if keys[0] in entry:
            refs.extend(PayloadRef.model_validate(page) for page in entry.get(keys[1], []))
            refs.extend(_segment_refs(payloads, entry, keys))
        elif "ref" in entry:
            refs.append(PayloadRef.model_validate(entry["ref"]))
    refs.extend(PayloadRef.model_validate(r) for r in snapshot.retired)
    return refs


def _dict_segments(
    payloads: PayloadStore,
    name: str,
    value: dict[str, Any],
    anchor: int,
    previous: Snapshot | None,
) -> tuple[dict[str, Any], list[list[str]]]:
    """`value` as segments of merge patches merged in runs (`segment_runs.dict_runs`), and
    each segment's keys: the previous snapshot's plus one of the keys added or replaced since,
    when the writer still holds the dict that snapshot saw (and its segments' keys) and the
    field was only merged into since (same anchor); otherwise one segment of all of it."""
    before = previous.fields.get(name) if previous is not None else None
    old = previous.dicts.get(name) if previous is not None else None
    keys = previous.dict_keys.get(name) if previous is not None else None
    patch: dict[str, Any] | None = None
    if (
        before is not None
        and "dsegs" in before
        and before["a"] == anchor
        and old is not None
        and len(old) == before["n"]
    ):
        patch = {} if old is value else dict_patch(old, value)

    def put(segment: Any) -> PayloadRef:
        return payloads.put(_pack(segment), SEGMENT_CONTENT_TYPE)

    return dict_runs(put, value, patch, before, keys)


LIST_KEYS = ("segs", "pages")
DICT_KEYS = ("dsegs", "dpages")


def _segment_refs(
    payloads: PayloadStore, entry: Mapping[str, Any], keys: tuple[str, str] = LIST_KEYS
) -> list[PayloadRef]:
    """A list's (or dict's) segment refs in order: those of its full pages, then its own."""
    segs, paged = keys
    refs: list[Any] = []
    pages = [PayloadRef.model_validate(page) for page in entry.get(paged, [])]
    for page in _fetch_all(payloads, pages):
        refs.extend(_shaped(page, list, paged))
    refs.extend(entry[segs])
    return [PayloadRef.model_validate(ref) for ref in refs]


def _shaped(value: Any, kind: type, name: str) -> Any:
    """A segment or page as its entry says it is (a list's segment holding an object would
    otherwise extend the list with its keys)."""
    if type(value) is not kind:
        raise ValueError(f"{name}: a segment holds {type(value).__name__}, not {kind.__name__}")
    return value


def _fetch_all(payloads: PayloadStore, refs: Sequence[PayloadRef]) -> list[Any]:
    """The segments under `refs`, unpacked, in order: fetched the way the store reads many
    payloads fastest (`payload_batches.py`: one query, a local loop, or a few at a time)."""
    return [_unpack(data) for data in get_many(payloads, refs)]


def _pack(value: Any, *, zstd: bool = True) -> bytes:
    data = compact_json(value).encode()
    return zstandard.compress(data, ZSTD_LEVEL) if zstd else zlib.compress(data, 6)


def _decompressor() -> zstandard.ZstdDecompressor:
    """This thread's zstd decompressor (one is not safe to share between threads; making one
    per segment cost a tenth of a cold read)."""
    made: zstandard.ZstdDecompressor | None = getattr(_local, "zstd", None)
    if made is None:
        made = _local.zstd = zstandard.ZstdDecompressor()
    return made


def _unpack(data: bytes) -> Any:
    try:
        if data[:4] == _ZSTD_MAGIC:
            text = _decompressor().decompress(data)
        else:
            text = zlib.decompress(data)
    except (zlib.error, zstandard.ZstdError) as exc:
        raise ValueError(f"not a compressed snapshot or segment: {exc}") from exc
    try:
        # pydantic-core's parser (a core dependency already) builds the same values as
        # `json.loads` in about 0.6 of the time; what it refuses (a lone surrogate escape,
        # which the writer never stores) goes through `json.loads`, as before. It caches the
        # strings of keys only: caching short values too (its default) took a fifth longer
        # on a chat's segments, whose values are long and distinct.
        return from_json(text, cache_strings="keys")
    except ValueError:
        return json.loads(text)


__all__ = [
    "SNAPSHOT_CONTENT_TYPE",
    "SNAPSHOT_EVERY",
    "SNAPSHOT_FORMAT",
    "ListReset",
    "Snapshot",
    "SnapshotFormatError",
    "read_snapshot",
    "snapshot_refs",
    "snapshot_values",
    "write_snapshot",
]
