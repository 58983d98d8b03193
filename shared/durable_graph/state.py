"""State schema handling: reducers, validation and applying partial updates.

The state is a pydantic model. A field annotated `Annotated[T, reducer]` accumulates (the reducer
merges the old value with a node's write, e.g. `operator.add` appends); every other field is
overwritten by the last write, as in LangGraph.
"""

from __future__ import annotations

import operator
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from durable_graph.canonical import check_json
from durable_graph.checkpoint import Op
from durable_graph.errors import InvalidInput

Reducer = Callable[[Any, Any], Any]
MODEL_CACHE = 128  # models kept for states of recent steps (see `StateSchema.to_model`)


@dataclass(frozen=True)
class FieldChange:
    """What a step did to one field: `set` (its whole new value), `add` (items appended by an
    appending reducer) or `merge` (keys a dict reducer added or replaced). JSON values."""

    op: Op
    value: Any


@dataclass
class Applied:
    """Writes folded into a state: the new full state and, per touched field, its change."""

    values: dict[str, Any]
    changes: dict[str, FieldChange]


class StateSchema:
    """Wraps the user's pydantic state model with what the engine needs to know about it.

    Applying a write validates only the fields it touches (and, for an appending reducer, only
    the appended items), so a step costs what it changed, not what the state weighs. A model
    with model or field validators of its own is validated whole instead (those validators may
    look at any field).
    """

    def __init__(self, model: type[BaseModel]) -> None:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError("StateGraph(state) takes a pydantic BaseModel subclass")
        self.model = model
        self.reducers: dict[str, Reducer] = {}
        self.adapters: dict[str, TypeAdapter[Any]] = {}
        for name, field in model.model_fields.items():
            # pydantic moves `Annotated[T, reducer]` metadata into `field.metadata`.
            constraints = []
            for meta in field.metadata:
                if callable(meta) and not isinstance(meta, type):
                    self.reducers[name] = meta
                else:
                    constraints.append(meta)
            annotation: Any = field.annotation
            if constraints:
                annotation = Annotated[(annotation, *constraints)]
            self.adapters[name] = TypeAdapter(annotation)
        self.fields = list(model.model_fields)
        decorators = model.__pydantic_decorators__
        self.whole = bool(
            decorators.model_validators or decorators.field_validators or decorators.validators
        )
        self._models: OrderedDict[int, tuple[dict[str, Any], BaseModel]] = OrderedDict()
        self._lock = threading.Lock()

    def json_schema(self) -> dict[str, Any]:
        return self.model.model_json_schema()

    def initial(self, values: Mapping[str, Any] | None) -> dict[str, Any]:
        """Defaults of the model merged with `values` (through reducers), validated."""
        base: dict[str, Any] = {}
        for name, field in self.model.model_fields.items():
            if not field.is_required():
                base[name] = field.get_default(call_default_factory=True)
        for key, raw in (values or {}).items():  # validated whole below, once
            value = self._written(key, raw, "input")
            reducer = self.reducers.get(key)
            old = base.get(key)
            base[key] = reducer(old, value) if reducer is not None and old is not None else value
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
        for write in writes:
            for key, raw in write.items():
                value = self._written(key, raw, where)
                reducer = self.reducers.get(key)
                old = merged.get(key)
                if reducer is None or old is None:
                    new, typed = self._field(key, value, where)
                    merged[key] = new
                    python[key] = typed
                    changes[key] = FieldChange("set", new)
                    appended.pop(key, None)
                    continue
                if reducer is operator.add and isinstance(old, list) and isinstance(value, list):
                    items, typed_items = self._field(key, value, where)
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
                combined = reducer(old, value)
                new, typed = self._field(key, combined, where)
                merged[key] = new
                python[key] = typed
                changes[key] = FieldChange("set", new)
                appended.pop(key, None)
        if self.whole:
            merged = self.validate(merged, where=where)
            changes = {
                k: FieldChange(c.op, merged[k] if c.op == "set" else c.value)
                for k, c in changes.items()
            }
        else:
            self._derive_model(current, merged, python, appended)
        return Applied(merged, changes)

    def check(self, write: Mapping[str, Any], *, where: str) -> None:
        """Validate one node's update on its own (each written value against its field), so a
        bad output fails the node, before any merging. Raises `InvalidInput`."""
        for key, raw in write.items():
            value = self._written(key, raw, where)
            reducer = self.reducers.get(key)
            if reducer is None or reducer is operator.add:
                self._field(key, value, where)

    def _written(self, key: str, raw: Any, where: str) -> Any:
        """A written value as JSON, refused if its field does not exist or it is not JSON."""
        if key not in self.model.model_fields:
            raise InvalidInput(
                f"{where}: {key!r} is not a field of {self.model.__name__} "
                f"(fields: {', '.join(self.fields)})",
                field=key,
            )
        value = _plain(raw)
        check_json(value, f"{where}.{key}")
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
        self._keep(dumped, model)
        return dumped

    def to_model(self, values: Mapping[str, Any]) -> BaseModel:
        """The state as the user's model. A state derived in this process from another one by
        `fold` reuses that one's model with only the touched fields replaced (O(change));
        otherwise it is validated whole once."""
        with self._lock:
            entry = self._models.get(id(values))
        if entry is not None and entry[0] is values:
            return _handout(entry[1])
        model = self.model.model_validate(dict(values))
        if isinstance(values, dict):
            self._keep(values, model)
        return _handout(model)

    def _derive_model(
        self,
        current: Mapping[str, Any],
        merged: dict[str, Any],
        python: dict[str, Any],
        appended: dict[str, list[Any]],
    ) -> None:
        with self._lock:
            entry = self._models.get(id(current))
        if entry is None or entry[0] is not current:
            return
        base = entry[1]
        update = dict(python)
        for key, items in appended.items():
            update[key] = [*getattr(base, key), *items]
        self._keep(merged, base.model_copy(update=update))

    def _keep(self, values: dict[str, Any], model: BaseModel) -> None:
        with self._lock:
            self._models[id(values)] = (values, model)
            while len(self._models) > MODEL_CACHE:
                self._models.popitem(last=False)


def _handout(model: BaseModel) -> BaseModel:
    """A copy of a kept model for one caller, with its top-level lists and dicts copied: the
    kept model is what the next step's model is derived from, so a node that appends to
    `state.messages` in place (instead of returning the item) must not change it. O(fields +
    their lengths) pointer copies; items inside are shared."""
    copies = {
        name: type(value)(value)
        for name, value in model.__dict__.items()
        if type(value) in (list, dict)
    }
    return model.model_copy(update=copies) if copies else model


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
    if isinstance(update, Mapping):
        return {str(k): _plain(v) for k, v in update.items()}
    raise InvalidInput(
        f"node {node!r} returned {type(update).__name__}; a node returns a dict of state "
        "updates or None",
        field=node,
    )
