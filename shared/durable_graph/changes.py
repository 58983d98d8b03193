"""What one step did to one state field, and the digests through which a record commits to the
whole state while hashing only what changed (record format 2, `docs/record-format.md`).

A `Change` is one field's change at one step. Its value is sealed with a fresh random salt into a
*chunk*, `canonical({"s": salt, "v": value})`, whose sha256 is the change's digest `d`. A chunk
too big to keep in the record goes to the payload store, and because the payload store is
content-addressed its address is that same digest. Erasing a value later (GDPR) destroys `v` and
`s` and keeps `d`: every hash still verifies, and the salt stops anyone guessing the value back.

Each field has a running *field digest*, advanced by its changes in O(change):

    set / keep:  F = d
    add:         F = sha256("add:" + F_before + d)     (append-only lists: a chain of chunks)
    merge:       F = sha256("merge:" + F_before + d)   (dict patches)
    del:         the field leaves the state

and the *state root* of a step is `digest({field: F})` over every field, O(number of fields).
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import compress, islice
from typing import Any

from durable_graph.canonical import canonical_bytes, plain_json, sha256_hex
from durable_graph.checkpoint import Change, Op, same
from durable_graph.payloads import CHUNK_CONTENT_TYPE
from durable_graph.salted_parts import chunk_bytes, new_salt, salted_chunk


@dataclass(frozen=True)
class FieldChange:
    """What a step did to one field, before sealing: `set` (its whole new value), `add` (items
    appended by an appending reducer) or `merge` (keys a dict reducer added or replaced). JSON
    values."""

    op: Op
    value: Any


def seal_change(op: Op, value: Any, salt: str | None = None) -> tuple[Change, bytes]:
    """A change with a fresh salt (`salt`, when the caller drew it: `new_salts`), and its
    chunk bytes (whose sha256 is `d`)."""
    if op == "del":
        return Change(op="del"), b""
    if salt is None:
        salt = new_salt()
    data = salted_chunk(salt, canonical_bytes(value))  # a drawn salt is hex: `chunk_bytes`
    return Change.inline_chunk(op, sha256_hex(data), salt, value), data


def touched(old: dict[str, Any], new: dict[str, Any], typed: Any = None) -> list[str] | None:
    """The keys of `new` whose value is not the very object `old` holds at that key (nor, with
    `typed`, a dict of the same keys in the same order, the object `typed` holds there), new
    keys included, in `new`'s order; None when `new` does not keep every key of `old`, in the
    same order, first. The scan is pointer comparisons in C (`map(operator.is_, ...)`), so
    finding the few keys a step touched in a dict of 10,000 costs microseconds, and only
    those go on to Python-level work (validation, JSON comparison, hashing)."""
    count = len(old)
    if len(new) < count:
        return None
    keys = list(new)
    if keys[:count] != list(old):
        return None
    head = list(islice(new.values(), count))
    kept: Iterator[bool] = map(operator.is_, head, old.values())
    if type(typed) is dict and len(typed) == count and list(typed) == keys[:count]:
        kept = map(operator.or_, kept, map(operator.is_, head, typed.values()))
    changed = list(compress(keys, map(operator.not_, kept)))
    changed.extend(keys[count:])
    return changed


def dict_patch(old: Any, new: Any, keys: list[str] | None = None) -> dict[str, Any] | None:
    """The `merge` patch that takes dict `old` to dict `new` (`{**old, **patch} == new`, keys in
    the same order), or None when a patch cannot say it: a key removed or moved, or every key
    changed (then a `set` is no bigger, and it lets a cold read start there). Values are
    compared as JSON (`1`, `1.0` and `true` differ); values `new` shares with `old` (what a
    dict reducer or `{**old, k: v}` gives, and what `StateSchema.fold` keeps for the keys a
    write did not touch) are found by identity in C (`touched`), so only the keys a step
    touched are compared as JSON: O(touched) Python work. `keys`: what `touched(old, new)`
    gives, when the caller already knows it."""
    if not (isinstance(old, dict) and isinstance(new, dict)) or not old:
        return None
    if keys is None:
        keys = touched(old, new)
    if keys is None:
        return None
    patch: dict[str, Any] = {}
    for name in keys:
        after = new[name]
        if name not in old or not same(after, old[name]):
            patch[name] = after
    if len(patch) >= len(new):
        return None
    return patch


def advance(before: str | None, change: Change) -> str | None:
    """The field digest after `change` (None: the field is gone)."""
    if change.op in ("set", "keep"):
        return change.d
    if change.op == "add":
        return sha256_hex(f"add:{before or ''}{change.d}".encode())
    if change.op == "merge":
        return sha256_hex(f"merge:{before or ''}{change.d}".encode())
    return None


def advance_all(digests: Mapping[str, str], changes: Mapping[str, Change]) -> dict[str, str]:
    """Every field digest after a step's changes."""
    after = dict(digests)
    for field, change in changes.items():
        new = advance(after.get(field), change)
        if new is None:
            after.pop(field, None)
        else:
            after[field] = new
    return after


def state_root(digests: Mapping[str, str]) -> str:
    """`digest({field: F})`. The field digests are hex strings, so only the field names need
    checking for the encoder's fast path (`canonical.plain_json`)."""
    return sha256_hex(canonical_bytes(dict(digests), plain=plain_json([], digests)))


__all__ = [
    "CHUNK_CONTENT_TYPE",
    "Change",
    "FieldChange",
    "advance",
    "advance_all",
    "chunk_bytes",
    "dict_patch",
    "seal_change",
    "state_root",
    "touched",
]
