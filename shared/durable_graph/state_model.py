"""From a state declaration to the pydantic model the engine validates through.

The state is declared as LangGraph users declare it: a `TypedDict`, a dataclass or a pydantic
model. Whatever the declaration, the engine validates through one pydantic model built from
it (`state_model`), and a node gets a state that answers both `state["k"]` and `state.k`
(`ItemAccess`, `StateDict`). A `TypedDict` or dataclass field without a default starts empty
(an empty list or dict for a reducer field, else `None`), as a LangGraph channel that was
never written. Chat message fields validate into LangChain's message types.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, NotRequired, Required

from pydantic import BaseModel, ConfigDict, create_model
from typing_extensions import ReadOnly, is_typeddict

from durable_graph import messages


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


__all__ = ["ItemAccess", "StateDict", "state_model"]
