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

Here: the document (written, read back, its refs); `snapshot_values.py` fetches the values it
names, `segment_payloads.py` packs and fetches its payloads.

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

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from durable_graph.backends import segment_payloads
from durable_graph.backends.segment_payloads import DICT_KEYS, LIST_KEYS, segment_refs
from durable_graph.backends.segment_runs import dict_runs, list_runs, retirement
from durable_graph.canonical import json_size_within
from durable_graph.changes import dict_patch
from durable_graph.checkpoint import PayloadRef
from durable_graph.ports.payload_store import PayloadStore

SNAPSHOT_EVERY = 64  # steps; the longest fold a cold read does once a thread has snapshots
SEGMENT_MIN_ITEMS = 64  # a shorter list is kept inline in the snapshot, unless it is big:
SEGMENT_MIN_BYTES = 64 * 1024  # a few documents of megabytes are segments too
# Compressed JSON (`segment_payloads.py`): segments and pages zstd, the document zlib.
SNAPSHOT_CONTENT_TYPE = "application/vnd.durable-graph.snapshot+json+zlib"
SEGMENT_CONTENT_TYPE = "application/vnd.durable-graph.segment+json+zstd"
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
        return payloads.put(segment_payloads.pack(value), SEGMENT_CONTENT_TYPE)

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
    ref = payloads.put(segment_payloads.pack(document, zstd=False), SNAPSHOT_CONTENT_TYPE)
    return Snapshot(step, ref, fields, dicts, dict_keys, **merges, deletable=deletable)


def read_snapshot(payloads: PayloadStore, ref: PayloadRef) -> Snapshot:
    """The snapshot under `ref` (its bytes are checked against `ref.sha256` by the store);
    `SnapshotFormatError` if it is in a format, or holds an entry, this release does not read."""
    doc = segment_payloads.unpack(payloads.get(ref))
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


def snapshot_refs(payloads: PayloadStore, snapshot: Snapshot) -> list[PayloadRef]:
    """Every payload a snapshot names: its lists' pages and segments, and whole-value chunks
    (what erasure must find before it deletes a snapshot, `erasure.py`)."""
    refs: list[PayloadRef] = []
    for entry in snapshot.fields.values():
        keys = DICT_KEYS if "dsegs" in entry else LIST_KEYS
        if keys[0] in entry:
            refs.extend(PayloadRef.model_validate(page) for page in entry.get(keys[1], []))
            refs.extend(segment_refs(payloads, entry, keys))
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
        return payloads.put(segment_payloads.pack(segment), SEGMENT_CONTENT_TYPE)

    return dict_runs(put, value, patch, before, keys)


__all__ = [
    "SNAPSHOT_CONTENT_TYPE",
    "SNAPSHOT_EVERY",
    "SNAPSHOT_FORMAT",
    "Snapshot",
    "SnapshotFormatError",
    "read_snapshot",
    "snapshot_refs",
    "write_snapshot",
]
