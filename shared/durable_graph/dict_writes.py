"""A write to a big dict field, validated in what it touched (issue 8: a step costs what it
changed).

A dict grown a key a step (a dict reducer `{**old, **new}`, or a node writing the dict back
whole with a key added: `{**state.index, k: v}`) hands the engine a dict of every key, but all
the keys it did not touch hold the very objects of the state it was read from. `touched`
(`changes.py`) finds the others with pointer comparisons in C; only they are checked as JSON,
validated against the field's type and dumped, and the new value is the old one with them
replaced. The result is the value whole validation gives (an entry of a `dict[str, V]` is
validated on its own, and an untouched entry is already the stored, validated JSON), so the
record, its chunk and its hash are byte for byte what they were.

Only fields whose entries validate one by one qualify (`merging_fields`): `dict[str, V]`,
`dict[Any, V]` or a bare `dict`, optionally `| None`, with no constraint on the dict as a whole
(`Field(max_length=...)` looks at every key). Any other field, a key removed or moved, or a
state model with validators of its own (`StateSchema.whole`) takes the whole path.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from durable_graph.changes import FieldChange, dict_patch, touched

#: checks a patch `{key: raw value}`: (its JSON, its typed form or None); raises
#: `InvalidInput` / `SerializationError` naming `<field>.<key>` as whole validation would.
PatchCheck = Callable[[dict[str, Any]], tuple[dict[str, Any], Any]]


def merging_fields(model: type[BaseModel]) -> frozenset[str]:
    """The fields of `model` whose dict values validate entry by entry (a reducer in the
    field's metadata is no constraint)."""
    names = set()
    for name, field in model.model_fields.items():
        constraints = [m for m in field.metadata if not (callable(m) and not isinstance(m, type))]
        if not constraints and _entry_wise(field.annotation):
            names.add(name)
    return frozenset(names)


def _entry_wise(annotation: Any) -> bool:
    """`dict`, `dict[str, V]` or `dict[Any, V]`, or one of them `| None`."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return len(options) == 1 and _entry_wise(options[0])
    if annotation is dict:
        return True
    if origin is not dict:
        return False
    args = typing.get_args(annotation)
    return not args or args[0] in (str, Any)


def dict_write(
    old: Any, raw: Any, typed_old: Any, check: PatchCheck
) -> tuple[dict[str, Any], Any, list[str]] | None:
    """`raw`, a dict written over dict `old`, checked in the keys it touched: (`old` with the
    checked JSON of those keys put in, sharing `old`'s objects for the others; the typed
    patch `check` gave; those keys, in order). None when `raw` is not such a write (not both
    exact dicts, `old` empty, a key of `old` removed or moved): the caller validates it
    whole. `typed_old`, the field's value in the state model the node was handed (LangChain
    messages or models where `old` holds their JSON), counts as untouched too."""
    if type(raw) is not dict or type(old) is not dict or not old or raw is old:
        return None
    keys = touched(old, raw, typed_old)
    if keys is None:
        return None
    patch, typed = check({key: raw[key] for key in keys})
    value = dict(old)
    value.update(patch)
    return value, typed, keys


def as_merges(
    current: Mapping[str, Any], changes: dict[str, FieldChange], known: dict[str, list[str]]
) -> dict[str, FieldChange]:
    """Each `set` of a dict that keeps every key of the dict it replaces (a dict reducer, or
    `{**old, k: v}` written whole) as a `merge` of only the keys it added or replaced, so a
    step that grows a dict costs what it added, not the dict's size (`docs/record-format.md`
    §3). A dict that lost a key stays a `set`. `known`: per field written once, the keys its
    write touched (the others hold `current`'s very objects), so they need no scan again."""
    for key, change in changes.items():
        if change.op == "set" and type(change.value) is dict:
            patch = dict_patch(current.get(key), change.value, known.get(key))
            if patch is not None:
                changes[key] = FieldChange("merge", patch)
    return changes


def note(
    known: dict[str, list[str]], changes: dict[str, FieldChange], key: str, keys: list[str]
) -> None:
    """Remember the keys a write touched in dict `key`, if it is the field's first write of
    the fold (they are then the keys that differ from the state before the step)."""
    if key in changes:
        known.pop(key, None)
    else:
        known[key] = keys


__all__ = ["PatchCheck", "as_merges", "dict_write", "merging_fields", "note"]
