"""State schema handling: reducers, validation and applying partial updates.

The state is a pydantic model. A field annotated `Annotated[T, reducer]` accumulates (the reducer
merges the old value with a node's write, e.g. `operator.add` appends); every other field is
overwritten by the last write, as in LangGraph.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from durable_graph.canonical import check_json
from durable_graph.errors import InvalidInput

Reducer = Callable[[Any, Any], Any]


class StateSchema:
    """Wraps the user's pydantic state model with what the engine needs to know about it."""

    def __init__(self, model: type[BaseModel]) -> None:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError("StateGraph(state) takes a pydantic BaseModel subclass")
        self.model = model
        self.reducers: dict[str, Reducer] = {}
        for name, field in model.model_fields.items():
            # pydantic moves `Annotated[T, reducer]` metadata into `field.metadata`.
            for meta in field.metadata:
                if callable(meta) and not isinstance(meta, type):
                    self.reducers[name] = meta
        self.fields = list(model.model_fields)

    def json_schema(self) -> dict[str, Any]:
        return self.model.model_json_schema()

    def initial(self, values: Mapping[str, Any] | None) -> dict[str, Any]:
        """Defaults of the model merged with `values` (through reducers), validated."""
        base: dict[str, Any] = {}
        for name, field in self.model.model_fields.items():
            if not field.is_required():
                base[name] = field.get_default(call_default_factory=True)
        return self.apply(base, [dict(values or {})], where="input")

    def apply(
        self, current: Mapping[str, Any], writes: Sequence[Mapping[str, Any]], *, where: str
    ) -> dict[str, Any]:
        """Fold writes into `current` in order; validate the result. Raises `InvalidInput`."""
        merged = dict(current)
        for write in writes:
            for key, value in write.items():
                if key not in self.model.model_fields:
                    raise InvalidInput(
                        f"{where}: {key!r} is not a field of {self.model.__name__} "
                        f"(fields: {', '.join(self.fields)})",
                        field=key,
                    )
                check_json(_plain(value), f"{where}.{key}")
                reducer = self.reducers.get(key)
                if reducer is not None and key in merged and merged[key] is not None:
                    merged[key] = reducer(merged[key], value)
                else:
                    merged[key] = value
        return self.validate(merged, where=where)

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
        return dumped

    def to_model(self, values: Mapping[str, Any]) -> BaseModel:
        return self.model.model_validate(dict(values))


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
