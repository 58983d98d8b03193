"""A state declaration read once, and single values checked against it.

`StateFields` knows the fields of the user's state (`TypedDict`, dataclass or pydantic model,
made a pydantic model by `state_model.py`): each field's reducer, its `TypeAdapter`, its default,
whether it is a dict validated key by key (`dict_writes.py`), and whether the model has
validators of its own (then a state is validated whole). It turns a written value into checked
JSON (`_written`, `_field`) and a whole state into its validated JSON (`validate`); folding
writes into a state is `StateSchema`'s (`state.py`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from durable_graph import messages
from durable_graph.canonical import check_json
from durable_graph.dict_writes import merging_fields
from durable_graph.errors import InvalidInput, SerializationError
from durable_graph.node_updates import holds_models, plain
from durable_graph.state_cache import CheckedUpdates, ModelCache
from durable_graph.state_model import state_model
from durable_graph.state_scalars import Plain, plain_check

Reducer = Callable[[Any, Any], Any]
_IMMUTABLE = (str, int, bool, float, type(None))  # defaults `get_default` returns uncopied


class StateFields:
    """The user's state declaration, read once: fields, reducers, validators and defaults.

    A written value is checked against its own field (`_written`, `_field`); a model with
    model or field validators of its own is validated whole instead (`validate`: those
    validators may look at any field).
    """

    def __init__(self, state: Any) -> None:
        self.kind, model = state_model(state)
        self.declared = state
        self.model = model
        self.reducers: dict[str, Reducer] = {}
        self.adapters: dict[str, TypeAdapter[Any]] = {}
        # Fields whose adapter hands back a value of the right type unchanged (`state_scalars`).
        self._plain: dict[str, Plain] = {}
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
            else:
                check = plain_check(annotation)
                if check is not None:
                    self._plain[name] = check
            self.adapters[name] = TypeAdapter(annotation)
        self.fields = list(model.model_fields)
        self._names = frozenset(self.fields)  # `model_fields` is a property: looked up per write
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
        # A default pydantic hands out as it is (an immutable scalar: `get_default` returns
        # it without a copy) is kept as the value itself in `_start`, which holds every optional
        # field in order (the others as None, replaced by their callable's value).
        self._defaults: dict[str, Callable[[], Any]] = {}
        self._start: dict[str, Any] = {}
        for name, field in model.model_fields.items():
            if field.is_required():
                continue
            factory = field.default_factory
            self._start[name] = None
            if factory is None and type(field.default) in _IMMUTABLE:
                self._start[name] = field.default
            elif factory is not None and not field.default_factory_takes_validated_data:
                self._defaults[name] = factory  # type: ignore[assignment]
            else:
                self._defaults[name] = functools.partial(
                    field.get_default, call_default_factory=True
                )

    def json_schema(self) -> dict[str, Any]:
        return self.model.model_json_schema()

    def _checked(self, key: str, patch: dict[str, Any], where: str) -> tuple[dict[str, Any], None]:
        """Some keys of a dict field's write, as JSON, checked against the field."""
        value = self._written(key, patch, where)
        self._field(key, value, where)
        return value, None

    def _written(self, key: str, raw: Any, where: str, *, seed: str | None = None) -> Any:
        """A written value as JSON, refused if its field does not exist or it is not JSON."""
        if key not in self._names:
            raise InvalidInput(
                f"{where}: {key!r} is not a field of {self.model.__name__} "
                f"(fields: {', '.join(self.fields)})",
                field=key,
            )
        if self.reducers.get(key) is messages.add_messages:
            return messages.messages_json(raw, seed=f"{seed}:{key}" if seed else None)
        value = plain(raw)
        try:
            check_json(value, f"{where}.{key}")
        except SerializationError as not_json:
            # Models inside a value (LangChain messages in a list, a pydantic item) are
            # written through the field's own validator; anything else (a set, NaN) keeps
            # the error that names the exact path, as does what the validator refuses.
            if not holds_models(raw):
                raise
            try:
                value = self._field(key, raw, where)[0]
            except InvalidInput:
                raise not_json from None
        return value

    def _field(self, key: str, value: Any, where: str) -> tuple[Any, Any]:
        """(JSON value, python value) of one field after validation against its annotation."""
        plain_value = self._plain.get(key)
        if plain_value is not None and plain_value(value):
            # What the adapter and its dump would give back (`state_scalars.py`); a list as
            # two new lists, as they make: the python one may be grown in place later
            # (`ModelCache.derive`), the JSON one is the state's.
            return (list(value), list(value)) if type(value) is list else (value, value)
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


__all__ = ["Reducer", "StateFields"]
