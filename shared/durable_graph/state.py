"""State schema handling: reducers, validation and applying partial updates.

The state is declared as LangGraph users declare it: a `TypedDict`, a dataclass or a pydantic
model. A field annotated `Annotated[T, reducer]` accumulates (the reducer merges the old value
with a node's write, e.g. `operator.add` appends, `add_messages` merges chat messages by id);
every other field is overwritten by the last write, as in LangGraph. Whatever the declaration,
the engine validates through one pydantic model built from it, and a node gets a state that
answers both `state["k"]` and `state.k`. A `TypedDict` or dataclass field without a default
starts empty (an empty list or dict for a reducer field, else `None`), as a LangGraph channel
that was never written.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import threading
import typing
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, NotRequired, Required

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, create_model
from typing_extensions import ReadOnly, is_typeddict

from durable_graph import messages
from durable_graph.canonical import check_json
from durable_graph.changes import dict_patch
from durable_graph.checkpoint import Op
from durable_graph.errors import InvalidInput, SerializationError

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


class ItemAccess:
    """`state["k"]`, `"k" in state`, `state.get("k")` and `state.keys()` on a pydantic state,
    so node code written for a `TypedDict` state reads a model state unchanged."""

    def __getitem__(self, key: str) -> Any:
        if key not in type(self).model_fields:  # type: ignore[attr-defined]
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in type(self).model_fields  # type: ignore[attr-defined]

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self else default

    def keys(self) -> list[str]:
        return list(type(self).model_fields)  # type: ignore[attr-defined]


class StateDict(dict[str, Any]):
    """The state handed to a node of a `TypedDict` or dataclass graph: a dict (as LangGraph
    gives it) whose keys also read as attributes (`state.messages`)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _declared(state: Any) -> tuple[str, dict[str, tuple[Any, Any]]]:
    """(kind, {field: (annotation, default)}) of a TypedDict or dataclass state declaration;
    `...` marks a field without a default."""
    hints = typing.get_type_hints(state, include_extras=True)
    if is_typeddict(state):
        return "typeddict", {name: (hint, ...) for name, hint in hints.items()}
    fields: dict[str, tuple[Any, Any]] = {}
    for item in dataclasses.fields(state):
        if item.default is not dataclasses.MISSING:
            default: Any = item.default
        elif item.default_factory is not dataclasses.MISSING:
            default = item.default_factory()
        else:
            default = ...
        fields[item.name] = (hints.get(item.name, Any), default)
    return "dataclass", fields


def _reducer_of(annotation: Any) -> Callable[[Any, Any], Any] | None:
    if typing.get_origin(annotation) is Annotated:
        for meta in annotation.__metadata__:
            if callable(meta) and not isinstance(meta, type):
                return meta  # type: ignore[no-any-return]
    return None


def _empty(annotation: Any) -> Any:
    """A never-written field's value: an empty list/dict for a reducer field (LangGraph
    starts an accumulating channel empty), else None."""
    if _reducer_of(annotation) is None:
        return None
    base = typing.get_args(annotation)[0]
    origin = typing.get_origin(base) or base
    if origin in (dict, Mapping):
        return {}
    return []


def _unset_field(hint: Any, default: Any) -> tuple[Any, Any]:
    """(annotation, default) of a TypedDict or dataclass field in the engine's model. One
    without a default starts empty: `[]`/`{}` under a reducer, else None (so None is valid)."""
    hint = _unwrapped(hint)
    annotation = _message_field(hint)
    if default is not ...:
        return annotation, default
    empty = _empty(hint)
    return (annotation if empty is not None else annotation | None), empty


def _unwrapped(hint: Any) -> Any:
    """A TypedDict field's type without `Required[...]` / `NotRequired[...]`."""
    while typing.get_origin(hint) in (Required, NotRequired, ReadOnly):
        hint = typing.get_args(hint)[0]
    return hint


def _message_field(annotation: Any) -> Any:
    """`Annotated[Sequence[BaseMessage], add_messages]` (and the like) as a list of
    `AnyMessage`: validating into `BaseMessage` itself would drop every subclass's fields
    (`tool_calls` of an `AIMessage`)."""
    reducer = _reducer_of(annotation)
    if reducer is None or not messages.is_add_messages(reducer):
        return annotation
    return Annotated[list[messages.message_type()], messages.add_messages]  # type: ignore[misc]


def state_model(state: Any) -> tuple[str, type[BaseModel]]:
    """(kind, the pydantic model the engine validates through) for a state declaration."""
    if isinstance(state, type) and issubclass(state, BaseModel):
        overrides = {
            name: (_message_field(_annotated(field)), field)
            for name, field in state.model_fields.items()
            if _message_field(_annotated(field)) is not _annotated(field)
        }
        subclass: type[BaseModel] = create_model(  # type: ignore[call-overload]
            state.__name__, __base__=(state, ItemAccess), __module__=state.__module__, **overrides
        )
        return "pydantic", subclass
    if isinstance(state, type) and (is_typeddict(state) or dataclasses.is_dataclass(state)):
        kind, fields = _declared(state)
        spec = {name: _unset_field(hint, default) for name, (hint, default) in fields.items()}
        built: type[BaseModel] = create_model(  # type: ignore[call-overload]
            state.__name__,
            __config__=ConfigDict(arbitrary_types_allowed=True),
            __module__=state.__module__,
            **spec,
        )
        return kind, built
    raise TypeError(
        "StateGraph(state) takes a TypedDict, a dataclass or a pydantic BaseModel subclass, "
        f"not {state!r}"
    )


def _annotated(field: Any) -> Any:
    """A pydantic field's annotation with its `Annotated` metadata put back."""
    if field.metadata:
        return Annotated[(field.annotation, *field.metadata)]
    return field.annotation


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
        self.message_fields = [
            name for name, reducer in self.reducers.items() if reducer is messages.add_messages
        ]
        decorators = model.__pydantic_decorators__
        self.whole = bool(
            decorators.model_validators or decorators.field_validators or decorators.validators
        )
        self._models: OrderedDict[int, tuple[dict[str, Any], BaseModel]] = OrderedDict()
        self._lock = threading.Lock()
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
                appending = reducer is operator.add or (
                    reducer is messages.add_messages and messages.appends(old, value)
                )
                if appending and isinstance(old, list) and isinstance(value, list):
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
                combined = _reduce(reducer, old, value)
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
        return Applied(merged, _as_merges(current, changes))

    def check(
        self, write: Mapping[str, Any], *, where: str, seed: str | None = None
    ) -> dict[str, Any]:
        """Validate one node's update on its own (each written value against its field), so a
        bad output fails the node, before any merging; the update as JSON (typed values such
        as LangChain messages written out, new messages given their ids once: derived from
        `seed`, so a node's re-run or replay names its messages the same). Raises
        `InvalidInput`."""
        checked: dict[str, Any] = {}
        for key, raw in write.items():
            value = checked[key] = self._written(key, raw, where, seed=seed)
            reducer = self.reducers.get(key)
            if reducer is messages.add_messages:
                self._field(key, [m for m in value if m.get("type") != "remove"], where)
            elif reducer is None or reducer is operator.add:
                self._field(key, value, where)
        return checked

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
        """Keep the model of `merged` derived from the one of `current` in O(change).

        The entry of `current` is taken out of the cache: its model was never handed out
        (`_handout` gives copies), so its appended lists are grown in place and move to the
        new model instead of being copied (a copy of a 10,000-message history per step, and
        128 superseded states kept alive for the garbage collector to walk, were what made a
        step's cost grow with the thread). A later `to_model(current)` validates it again."""
        with self._lock:
            entry = self._models.get(id(current))
            if entry is None or entry[0] is not current:
                return
            del self._models[id(current)]
        base = entry[1]
        update = dict(python)
        for key, items in appended.items():
            grown = getattr(base, key)
            if type(grown) is list:
                grown.extend(items)
            else:
                grown = [*grown, *items]
            update[key] = grown
        self._keep(merged, base.model_copy(update=update))

    def _keep(self, values: dict[str, Any], model: BaseModel) -> None:
        with self._lock:
            self._models[id(values)] = (values, model)
            while len(self._models) > MODEL_CACHE:
                self._models.popitem(last=False)


def _as_merges(
    current: Mapping[str, Any], changes: dict[str, FieldChange]
) -> dict[str, FieldChange]:
    """Each `set` of a dict that keeps every key of the dict it replaces (a dict reducer, or
    `{**old, k: v}` written whole) as a `merge` of only the keys it added or replaced, so a
    step that grows a dict costs what it added, not the dict's size (`docs/record-format.md`
    §3). A dict that lost a key stays a `set`."""
    for key, change in changes.items():
        if change.op == "set" and type(change.value) is dict:
            patch = dict_patch(current.get(key), change.value)
            if patch is not None:
                changes[key] = FieldChange("merge", patch)
    return changes


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
    if dataclasses.is_dataclass(update) and not isinstance(update, type):
        return {f.name: getattr(update, f.name) for f in dataclasses.fields(update)}
    if isinstance(update, Mapping):
        return {str(k): _plain(v) for k, v in update.items()}
    raise InvalidInput(
        f"node {node!r} returned {type(update).__name__}; a node returns a dict of state "
        "updates or None",
        field=node,
    )
