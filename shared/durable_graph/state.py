"""State schema handling: reducers, validation and applying partial updates.

A field annotated `Annotated[T, reducer]` accumulates (the reducer merges the old value with a
node's write, e.g. `operator.add` appends, `add_messages` merges chat messages by id); every
other field is overwritten by the last write, as in LangGraph. The declaration (`TypedDict`,
dataclass or pydantic model) becomes the model the engine validates through in
`state_model.py`; the models of recent states are kept in `state_cache.py`; a write to a big
dict is validated in the keys it touched (`dict_writes.py`).
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from durable_graph import messages
from durable_graph.canonical import check_json
from durable_graph.changes import FieldChange
from durable_graph.dict_writes import as_merges, dict_write, merging_fields, note
from durable_graph.errors import InvalidInput, SerializationError
from durable_graph.state_cache import CheckedUpdates, ModelCache
from durable_graph.state_model import ItemAccess, StateDict, state_model

Reducer = Callable[[Any, Any], Any]


@dataclass
class Applied:
    """Writes folded into a state: the new full state and, per touched field, its change."""

    values: dict[str, Any]
    changes: dict[str, FieldChange]


class StateSchema:
    """Wraps the user's state declaration with what the engine needs to know about it.

    Applying a write validates only the fields it touches (and, for an appending reducer, only
    the appended items), so a step costs what it changed, not what the state weighs. A model
    with model or field validators of its own is validated whole instead (those validators may
    look at any field).
    """

    def __init__(self, state: Any) -> None:
        self.kind, model = state_model(state)
        self.declared = state
        self.model = model
        self.reducers: dict[str, Reducer] = {}
        self.adapters: dict[str, TypeAdapter[Any]] = {}
        for name, field in model.model_fields.items():
            # pydantic moves `Annotated[T, reducer]` metadata into `field.metadata`.
            constraints = []
            for meta in field.metadata:
                if callable(meta) and not isinstance(meta, type):
                    self.reducers[name] = (
                        messages.add_messages if messages.is_add_messages(meta) else meta
                    )
                else:
                    constraints.append(meta)
            annotation: Any = field.annotation
            if constraints:
                annotation = Annotated[(annotation, *constraints)]
            self.adapters[name] = TypeAdapter(annotation)
        self.fields = list(model.model_fields)
        self.merging = merging_fields(model)  # dict fields a write is validated in what it touched
        self.message_fields = [
            name for name, reducer in self.reducers.items() if reducer is messages.add_messages
        ]
        decorators = model.__pydantic_decorators__
        self.whole = bool(
            decorators.model_validators or decorators.field_validators or decorators.validators
        )
        self.models = ModelCache(model)
        self.checked = CheckedUpdates()  # what `check` validated, until `fold` takes it
        # Each optional field's default, as a no-argument callable, worked out once: pydantic's
        # `get_default` inspects a default factory's signature on every call (for `list`, a
        # parse of its text signature: about a third of a millisecond per thread started).
        self._defaults: dict[str, Callable[[], Any]] = {}
        for name, field in model.model_fields.items():
            if field.is_required():
                continue
            factory = field.default_factory
            if factory is not None and not field.default_factory_takes_validated_data:
                self._defaults[name] = factory  # type: ignore[assignment]
            else:
                self._defaults[name] = functools.partial(
                    field.get_default, call_default_factory=True
                )

    def json_schema(self) -> dict[str, Any]:
        return self.model.model_json_schema()

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
        base: dict[str, Any] = {name: default() for name, default in self._defaults.items()}
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

    def _checked(self, key: str, patch: dict[str, Any], where: str) -> tuple[dict[str, Any], None]:
        """Some keys of a dict field's write, as JSON, checked against the field."""
        value = self._written(key, patch, where)
        self._field(key, value, where)
        return value, None

    def _written(self, key: str, raw: Any, where: str, *, seed: str | None = None) -> Any:
        """A written value as JSON, refused if its field does not exist or it is not JSON."""
        if key not in self.model.model_fields:
            raise InvalidInput(
                f"{where}: {key!r} is not a field of {self.model.__name__} "
                f"(fields: {', '.join(self.fields)})",
                field=key,
            )
        if self.reducers.get(key) is messages.add_messages:
            return messages.messages_json(raw, seed=f"{seed}:{key}" if seed else None)
        value = _plain(raw)
        try:
            check_json(value, f"{where}.{key}")
        except SerializationError as not_json:
            # Models inside a value (LangChain messages in a list, a pydantic item) are
            # written through the field's own validator; anything else (a set, NaN) keeps
            # the error that names the exact path, as does what the validator refuses.
            if not _holds_models(raw):
                raise
            try:
                value = self._field(key, raw, where)[0]
            except InvalidInput:
                raise not_json from None
        return value

    def _field(self, key: str, value: Any, where: str) -> tuple[Any, Any]:
        """(JSON value, python value) of one field after validation against its annotation."""
        adapter = self.adapters[key]
        try:
            typed = adapter.validate_python(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(part) for part in (key, *first["loc"]))
            raise InvalidInput(
                f"{where}: field {loc!r}: {first['msg']} ({len(exc.errors())} error(s) "
                f"validating {self.model.__name__})",
                field=loc,
            ) from None
        dumped = adapter.dump_python(typed, mode="json")
        check_json(dumped, f"{where}.{key}")
        return dumped, typed

    def validate(self, values: Mapping[str, Any], *, where: str) -> dict[str, Any]:
        try:
            model = self.model.model_validate(dict(values))
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(part) for part in first["loc"]) or "state"
            raise InvalidInput(
                f"{where}: field {loc!r}: {first['msg']} ({len(exc.errors())} error(s) "
                f"validating {self.model.__name__})",
                field=loc,
            ) from None
        dumped = model.model_dump(mode="json")
        check_json(dumped, where)
        self.models.keep(dumped, model)
        return dumped

    def to_model(self, values: Mapping[str, Any]) -> BaseModel:
        """The state as the user's model. A state derived in this process from another one by
        `fold` reuses that one's model with only the touched fields replaced (O(change));
        otherwise it is validated whole once."""
        return self.models.to_model(values)


def _holds_models(value: Any) -> bool:
    """A pydantic model or dataclass instance in a value, at any depth of lists and dicts."""
    if isinstance(value, BaseModel) or (
        dataclasses.is_dataclass(value) and not isinstance(value, type)
    ):
        return True
    if isinstance(value, list | tuple):
        return any(_holds_models(item) for item in value)
    if isinstance(value, dict):
        return any(_holds_models(item) for item in value.values())
    return False


def _reduce(reducer: Reducer, old: Any, value: Any) -> Any:
    """A reducer applied to JSON values (`add_messages` through its JSON form)."""
    if reducer is messages.add_messages:
        return messages.merge(old, value)
    return reducer(old, value)


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value


def normalise_update(update: Any, *, node: str) -> dict[str, Any]:
    """A node may return None, a dict or a model; anything else is a bug in the node."""
    if update is None:
        return {}
    if isinstance(update, BaseModel):
        return update.model_dump(mode="json", exclude_unset=True)
    if dataclasses.is_dataclass(update) and not isinstance(update, type):
        return {f.name: getattr(update, f.name) for f in dataclasses.fields(update)}
    if isinstance(update, Mapping):
        return {str(k): _plain(v) for k, v in update.items()}
    raise InvalidInput(
        f"node {node!r} returned {type(update).__name__}; a node returns a dict of state "
        "updates or None",
        field=node,
    )


__all__ = ["Applied", "FieldChange", "ItemAccess", "StateDict", "StateSchema", "normalise_update"]
