"""Folding node writes into a state: reducers, per-field changes, validation of what they touch.

A field annotated `Annotated[T, reducer]` accumulates (the reducer merges the old value with a
node's write, e.g. `operator.add` appends, `add_messages` merges chat messages by id); every
other field is overwritten by the last write, as in LangGraph. The declaration (`TypedDict`,
dataclass or pydantic model) becomes the model the engine validates through in
`state_model.py` and is read once in `state_fields.py`; the models of recent states are kept in
`state_cache.py`; a write to a big dict is validated in the keys it touched (`dict_writes.py`);
what a node returns becomes an update in `node_updates.py`.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from durable_graph import messages
from durable_graph.changes import FieldChange
from durable_graph.dict_writes import as_merges, dict_write, note
from durable_graph.node_updates import normalise_update
from durable_graph.state_fields import Reducer, StateFields
from durable_graph.state_model import ItemAccess, StateDict


@dataclass
class Applied:
    """Writes folded into a state: the new full state and, per touched field, its change."""

    values: dict[str, Any]
    changes: dict[str, FieldChange]


class StateSchema(StateFields):
    """Wraps the user's state declaration with what the engine needs to know about it.

    Applying a write validates only the fields it touches (and, for an appending reducer, only
    the appended items), so a step costs what it changed, not what the state weighs. A model
    with model or field validators of its own is validated whole instead (those validators may
    look at any field).
    """

    def to_state(self, values: Mapping[str, Any]) -> Any:
        """The state as a node or router gets it: the model (with item access) for a pydantic
        declaration, a `StateDict` for a TypedDict or dataclass one."""
        model = self.to_model(values)
        if self.kind == "pydantic":
            return model
        return StateDict(model.__dict__)

    def output(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The state as `invoke` returns it: JSON values, but chat messages as LangChain
        objects (when it is installed), as LangGraph returns them."""
        out = dict(values)
        if messages.HAS_LANGCHAIN:
            for name in self.message_fields:
                if isinstance(out.get(name), list):
                    out[name] = self.adapters[name].validate_python(out[name])
        return out

    def typed(self, write: Mapping[str, Any]) -> dict[str, Any]:
        """A JSON update with each field read back as its type (messages as objects), for a
        caller's stream; a value its field cannot read alone (a partial write) stays JSON."""
        out: dict[str, Any] = {}
        for key, value in write.items():
            adapter = self.adapters.get(key)
            try:
                out[key] = adapter.validate_python(value) if adapter is not None else value
            except ValidationError:
                out[key] = value
        return out

    def initial(self, values: Mapping[str, Any] | None) -> dict[str, Any]:
        """Defaults of the model merged with `values` (through reducers), validated."""
        base = dict(self._start)
        for name, default in self._defaults.items():
            base[name] = default()
        for key, raw in (values or {}).items():  # validated whole below, once
            value = self._written(key, raw, "input")
            reducer = self.reducers.get(key)
            old = base.get(key)
            base[key] = _reduce(reducer, old, value) if reducer and old is not None else value
        return self.validate(base, where="input")

    def apply(
        self, current: Mapping[str, Any], writes: Sequence[Mapping[str, Any]], *, where: str
    ) -> dict[str, Any]:
        """Fold writes into `current` in order; validate the result. Raises `InvalidInput`."""
        return self.fold(current, writes, where=where).values

    def fold(
        self, current: Mapping[str, Any], writes: Sequence[Mapping[str, Any]], *, where: str
    ) -> Applied:
        """Fold writes into `current` in order, validating what they touch; per-field changes.

        `current` is a validated state (JSON values); it is not modified.
        """
        merged = dict(current)
        changes: dict[str, FieldChange] = {}
        python: dict[str, Any] = {}
        appended: dict[str, list[Any]] = {}
        patched: dict[str, dict[str, Any]] = {}  # typed keys of dicts validated key by key
        known: dict[str, list[str]] = {}  # keys of a dict one write touched (`dict_patch`)
        for write in writes:
            checked = self.checked.take(write)
            for key, raw in write.items():
                reducer = self.reducers.get(key)
                old = merged.get(key)
                keys = None
                if reducer is None:
                    keys = self._patch(key, old, raw, where, merged, python, patched)
                if keys is not None:
                    note(known, changes, key, keys)
                    changes[key] = FieldChange("set", merged[key])
                    appended.pop(key, None)
                    continue
                known.pop(key, None)
                done = checked.get(key)
                value = raw if done is not None else self._written(key, raw, where)
                if reducer is None or old is None:
                    new, typed = done or self._field(key, value, where)
                    merged[key] = new
                    python[key] = typed
                    patched.pop(key, None)
                    changes[key] = FieldChange("set", new)
                    appended.pop(key, None)
                    continue
                appending = reducer is operator.add or (
                    reducer is messages.add_messages and messages.appends(old, value)
                )
                if appending and isinstance(old, list) and isinstance(value, list):
                    items, typed_items = done or self._field(key, value, where)
                    merged[key] = old + items
                    earlier = changes.get(key)
                    if earlier is None or earlier.op == "add":
                        before = earlier.value if earlier is not None else []
                        changes[key] = FieldChange("add", before + items)
                        appended[key] = appended.get(key, []) + list(typed_items)
                    else:
                        changes[key] = FieldChange("set", merged[key])
                        python.pop(key, None)
                    continue
                combined = _reduce(reducer, old, value)
                keys = self._patch(key, old, combined, where, merged, python, patched, raw=False)
                if keys is None:
                    new, typed = self._field(key, combined, where)
                    merged[key] = new
                    python[key] = typed
                    patched.pop(key, None)
                else:
                    note(known, changes, key, keys)
                changes[key] = FieldChange("set", merged[key])
                appended.pop(key, None)
        if self.whole:
            merged = self.validate(merged, where=where)
            changes = {
                k: FieldChange(c.op, merged[k] if c.op == "set" else c.value)
                for k, c in changes.items()
            }
        else:
            self.models.derive(current, merged, python, appended, patched)
        return Applied(merged, as_merges(current, changes, {} if self.whole else known))

    def _patch(
        self,
        key: str,
        old: Any,
        new: Any,
        where: str,
        merged: dict[str, Any],
        python: dict[str, Any],
        patched: dict[str, dict[str, Any]],
        *,
        raw: bool = True,
    ) -> list[str] | None:
        """Fold `new`, a dict written over dict `old` (a node's write when `raw`, else what a
        reducer made of it), validating only the keys it touched (`dict_writes.py`): those
        keys, or None when it is not such a write. The typed keys go where `ModelCache.derive`
        finds them."""
        if key not in self.merging:
            return None

        def check(patch: dict[str, Any]) -> tuple[dict[str, Any], Any]:
            return self._field(key, self._written(key, patch, where) if raw else patch, where)

        done = dict_write(old, new, None, check)
        if done is None:
            return None
        merged[key], typed, keys = done
        if key in python:  # set whole earlier in this fold: its typed value, patched
            python[key] = {**python[key], **typed}
        else:
            patched[key] = {**patched.get(key, {}), **typed}
        return keys

    def check(
        self,
        write: Mapping[str, Any],
        *,
        where: str,
        seed: str | None = None,
        current: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Validate one node's update on its own (each written value against its field), so a
        bad output fails the node, before any merging; the update as JSON (typed values such
        as LangChain messages written out, new messages given their ids once: derived from
        `seed`, so a node's re-run or replay names its messages the same). With `current`, the
        state the node read, a dict written back whole is checked in the keys it touched
        (`dict_writes.py`). Raises `InvalidInput`. A field validated here whole is not
        validated again when `fold` takes this update in this process (`CheckedUpdates`)."""
        checked: dict[str, Any] = {}
        fields: dict[str, tuple[Any, Any]] = {}
        for key, raw in write.items():
            if current is not None and key in self.merging and key not in self.reducers:
                done = dict_write(
                    current.get(key),
                    raw,
                    self.models.field(current, key),
                    functools.partial(self._checked, key, where=where),
                )
                if done is not None:
                    checked[key] = done[0]
                    continue
            value = checked[key] = self._written(key, raw, where, seed=seed)
            reducer = self.reducers.get(key)
            if reducer is messages.add_messages:
                self._field(key, [m for m in value if m.get("type") != "remove"], where)
            elif reducer is None or reducer is operator.add:
                fields[key] = self._field(key, value, where)
        if fields:
            self.checked.keep(checked, fields)
        return checked


def _reduce(reducer: Reducer, old: Any, value: Any) -> Any:
    """A reducer applied to JSON values (`add_messages` through its JSON form)."""
    if reducer is messages.add_messages:
        return messages.merge(old, value)
    return reducer(old, value)


__all__ = ["Applied", "FieldChange", "ItemAccess", "StateDict", "StateSchema", "normalise_update"]
