"""A LangGraph checkpoint's header as the ledger stores it: a delta on the previous checkpoint's.

Most of a checkpoint header repeats its predecessor: every channel version but the few the step
bumped, every node's `versions_seen` but the one or two nodes that ran, and a parent id that is
the previous checkpoint's id. The record keeps only what changed (the chain makes the previous
header a fixed, hashed thing, so the delta is as verifiable as the whole), and the index expands
it as it reads the rows in order:

    full (what the index and readers use)      stored (`$checkpoint` of a record)
    {"id", "parent", "ts", "v",                {"id", "ts", "v", "updated", "meta", "extra",
     "versions": {channel: version},            "dv": {channel: version} (new or changed),
     "seen": {node: {channel: version}},        "rv": [channel] (removed; left out when none),
     "updated", "meta", "extra"}                "ds": {node: {channel: version}} (changed
                                                nodes, whole), "rs": [node] (removed),
                                                "parent" only when it is not the previous
                                                checkpoint's id}

A stored header with `versions` is a whole one (records written before this format, and the
first checkpoint of a chain keeps the delta form on an empty predecessor); both read the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_COPIED = ("id", "ts", "v", "updated", "meta", "extra")


def compress(full: Mapping[str, Any], before: Mapping[str, Any] | None) -> dict[str, Any]:
    """The stored form of header `full`, on the previous checkpoint's full header `before`
    (None: the first checkpoint of the chain)."""
    prev = before or {}
    prev_versions: Mapping[str, Any] = prev.get("versions", {})
    prev_seen: Mapping[str, Any] = prev.get("seen", {})
    versions: Mapping[str, Any] = full["versions"]
    seen: Mapping[str, Any] = full["seen"]
    stored = {key: full[key] for key in _COPIED}
    stored["dv"] = {c: v for c, v in versions.items() if prev_versions.get(c) != v}
    stored["ds"] = {n: dict(s) for n, s in seen.items() if prev_seen.get(n) != s}
    removed_versions = [c for c in prev_versions if c not in versions]
    removed_seen = [n for n in prev_seen if n not in seen]
    if removed_versions:
        stored["rv"] = removed_versions
    if removed_seen:
        stored["rs"] = removed_seen
    if full["parent"] != prev.get("id"):
        stored["parent"] = full["parent"]
    return stored


def expand(stored: Mapping[str, Any], before: Mapping[str, Any] | None) -> dict[str, Any]:
    """The full header of a stored one, on the previous checkpoint's full header."""
    if "versions" in stored:  # a whole header (the format before deltas)
        return dict(stored)
    prev = before or {}
    versions = {**prev.get("versions", {}), **stored["dv"]}
    seen = {**prev.get("seen", {}), **stored["ds"]}
    for channel in stored.get("rv", ()):
        versions.pop(channel, None)
    for node in stored.get("rs", ()):
        seen.pop(node, None)
    full = {key: stored[key] for key in _COPIED}
    full["versions"] = versions
    full["seen"] = seen
    full["parent"] = stored["parent"] if "parent" in stored else prev.get("id")
    return full


__all__ = ["compress", "expand"]
