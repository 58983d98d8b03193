"""The values a snapshot names, fetched (`snapshots.py`, `docs/record-format.md` §7): its
lists' and dicts' segments, its whole-value chunks and its inline values. An older snapshot
whose segments a merge deleted reads its lists as prefixes of a newer snapshot's
(`segment_runs.py`); a list re-set since cannot be read so (`ListReset`: fold from the rows).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from durable_graph.backends.segment_payloads import (
    DICT_KEYS,
    fetch_all,
    segment_refs,
    shaped,
)
from durable_graph.backends.segment_runs import prefix_refs, run_items
from durable_graph.backends.snapshots import Snapshot
from durable_graph.checkpoint import PayloadRef
from durable_graph.ports.payload_store import PayloadStore


def snapshot_values(
    payloads: PayloadStore, snapshot: Snapshot, newer: Snapshot | None = None
) -> dict[str, Any]:
    """The snapshot's values, segments and chunks fetched (each checked by its digest).
    `newer`: a later snapshot of the thread, whose segments hold this one's lists as prefixes
    (this one's were merged away, `segment_runs.py`); `ListReset` if a list was re-set since."""
    return {
        name: entry_value(payloads, name, entry, newer) for name, entry in snapshot.fields.items()
    }


def entry_value(
    payloads: PayloadStore,
    name: str,
    entry: Mapping[str, Any],
    newer: Snapshot | None = None,
) -> Any:
    """The value of one field of a snapshot, its segments or chunk fetched (`snapshot_values`;
    a lazy read fetches one field at a time, `lazy_state.py`)."""
    if "dsegs" in entry:
        merged: dict[str, Any] = {}
        patches = fetch_all(payloads, segment_refs(payloads, entry, DICT_KEYS))
        counts = entry.get("cnt")  # merged runs: each patch's key count
        if counts is not None and [len(shaped(p, dict, name)) for p in patches] != counts:
            raise ValueError(f"{name}: segments are not the patches of {counts} keys")
        for patch in patches:
            merged.update(shaped(patch, dict, name))  # replaced keys stay where they were
        if len(merged) != entry["n"]:
            raise ValueError(f"{name}: segments hold {len(merged)} keys, not {entry['n']}")
        return merged
    if "segs" in entry and "cnt" in entry:
        return _run_list(payloads, name, entry, newer)
    if "segs" in entry:
        items = []
        for segment in fetch_all(payloads, segment_refs(payloads, entry)):
            items.extend(shaped(segment, list, name))
        if len(items) != entry["n"]:
            raise ValueError(f"{name}: segments hold {len(items)} items, not {entry['n']}")
        return items
    if "ref" in entry:
        chunk = json.loads(payloads.get(PayloadRef.model_validate(entry["ref"])))
        return chunk.get("v") if isinstance(chunk, dict) else None
    return entry.get("v")


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
    items = run_items(fetch_all(payloads, segment_refs(payloads, source)), source, name)
    del items[count:]
    if len(items) != count:
        raise ValueError(f"{name}: segments hold {len(items)} items, not {count}")
    return items


__all__ = ["ListReset", "entry_value", "snapshot_values"]
