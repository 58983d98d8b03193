"""A format-2 record's hash body and stored row written from its fields as plain data.

A record whose free-form parts were checked to be plain JSON (`Checkpoint._plain`) holds
nothing `mode="json"` would change: strings, safe integers, floats, lists and dicts, and the
part models below, which are frozen and forbid extra fields, so a part's `__dict__` is its dump
but for the salts left out while None (`record_parts._salt`). Any other part (a sign-off, with
its own serialiser) is dumped by pydantic. The stored row no longer copies the record
(`stored()`) to dump it (about 48k fewer instructions per row under callgrind); the hash body
costs about what pydantic's dump did. The output is the same dicts pydantic gives
(tests/unit/test_record_json.py holds them to it), so hashes and stored bytes are unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from durable_graph.record_parts import (
    Actor,
    Change,
    ErrorInfo,
    GraphRef,
    InterruptInfo,
    IoRecord,
    ParentRef,
    PayloadRef,
    RouteDecision,
    Task,
)

# Parts without nested models or serialisers of their own (a `Change`'s `ref` is the one
# nested part, `_change_row`).
_FLAT: tuple[type[BaseModel], ...] = (
    Actor, ErrorInfo, GraphRef, InterruptInfo, IoRecord, ParentRef, PayloadRef, RouteDecision,
    Task,
)  # fmt: skip
_MISSING = object()


def _default(info: FieldInfo) -> Any:
    if info.is_required():
        return _MISSING
    return info.get_default(call_default_factory=True)


def defaults_of(model: type[BaseModel]) -> dict[str, Any]:
    """Each field's default (what `exclude_defaults` compares with), a required one left out."""
    found = {name: _default(info) for name, info in model.model_fields.items()}
    return {name: value for name, value in found.items() if value is not _MISSING}


def _dropped_none(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields a dump leaves out while None (`exclude_if`: the salts)."""
    return tuple(name for name, info in model.model_fields.items() if info.exclude_if)


_DEFAULTS = {model: defaults_of(model) for model in _FLAT}
_DEFAULTS[Change] = defaults_of(Change)
_DROPPED = {model: _dropped_none(model) for model in _FLAT}


def part_json(part: Any) -> Any:
    """`part.model_dump(mode="json")` of a part of a plain record (None stays None)."""
    kind = type(part)
    dropped = _DROPPED.get(kind)
    if dropped is None:
        return part if part is None else part.model_dump(mode="json")
    doc = dict(part.__dict__)
    for name in dropped:
        if doc[name] is None:
            del doc[name]
    return doc


def part_row(part: Any) -> Any:
    """`part.model_dump(mode="json", exclude_defaults=True)` of a part of a plain record."""
    kind = type(part)
    if kind is Change:
        return _change_row(part)
    defaults = _DEFAULTS.get(kind)
    if defaults is None:
        return part if part is None else part.model_dump(mode="json", exclude_defaults=True)
    return _without_defaults(part.__dict__, defaults)


def _without_defaults(fields: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: value
        for name, value in fields.items()
        if (default := defaults.get(name, _MISSING)) is _MISSING or value != default
    }


def _change_row(change: Change) -> dict[str, Any]:
    doc = _without_defaults(change.__dict__, _DEFAULTS[Change])
    ref = doc.get("ref")
    if ref is not None:
        doc["ref"] = part_row(ref)
    return doc


# The record's fields that hold parts: one (or None), a list of them, a dict of them. Looked
# up by name: `isinstance(value, BaseModel)` on a string or a dict costs an AttributeError
# inside pydantic's metaclass (`__instancecheck__` asks `hasattr`), more than the dump itself.
# tests/unit/test_record_json.py holds these sets to the model's annotations.
PART_FIELDS = frozenset(
    {"parent", "snap", "next_ref", "interrupt", "io_ref", "error", "graph", "actor", "signoff"}
)
PART_LISTS = frozenset({"next", "route", "io"})
PART_DICTS = frozenset({"changes", "chunks"})


def field_json(name: str, value: Any) -> Any:
    """Field `name` of a record as `mode="json"` dumps it. Lists and dicts are new (the hash
    body's salted parts are replaced in them, `salted_parts.commit_parts`); free-form values
    are shared."""
    if name in PART_FIELDS:
        return None if value is None else part_json(value)
    if name in PART_LISTS:
        return [part_json(item) for item in value]
    if name in PART_DICTS:
        return {key: part_json(item) for key, item in value.items()}
    kind = type(value)
    if kind is list:
        return list(value)
    if kind is dict:
        return dict(value)
    return value


def field_row(name: str, value: Any) -> Any:
    """`field_json` with the defaults of its parts left out (the stored row)."""
    if name in PART_FIELDS:
        return None if value is None else part_row(value)
    if name in PART_LISTS:
        return [part_row(item) for item in value]
    if name in PART_DICTS:
        return {key: part_row(item) for key, item in value.items()}
    return value


def fields_json(fields: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The named fields of a record (its `__dict__`) as `model_dump(mode="json",
    include=names)` gives them."""
    return {name: field_json(name, fields[name]) for name in names}


def io_row(record: IoRecord, update: Mapping[str, Any]) -> dict[str, Any]:
    """`record.model_copy(update=update)` as a stored row part (`part_row`)."""
    doc = _without_defaults(record.__dict__, _DEFAULTS[IoRecord])
    defaults = _DEFAULTS[IoRecord]
    for name, value in update.items():
        if value == defaults.get(name, _MISSING):
            doc.pop(name, None)
        else:
            doc[name] = value
    return doc


__all__ = [
    "PART_DICTS",
    "PART_FIELDS",
    "PART_LISTS",
    "defaults_of",
    "field_json",
    "field_row",
    "fields_json",
    "io_row",
    "part_json",
    "part_row",
]
