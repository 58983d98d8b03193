"""A pydantic model copied as `model_copy(update=...)` makes it, without its generic work.

`model_copy` takes three `copy.copy` calls and a deep-copy branch; on the hot path a copy cost
as much as sealing the change it carried (a record's parts, `record_parts.Record.copied`) or
was a step's largest pydantic call after validation (the state model, twice a step:
`state_cache`). `update` holds values already checked (unvalidated, as `model_copy`'s)."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

M = TypeVar("M", bound=BaseModel)


def copied(model: M, update: dict[str, Any]) -> M:
    """`model.model_copy(update=update)`, as it makes it, without its generic steps (three
    `copy.copy` calls, a deep-copy branch): a step copies its state's model twice (`derive`,
    `handout`). A model that keeps extra fields, whose `update` may hold some, is copied by
    pydantic itself."""
    if model.model_config.get("extra") == "allow":
        return model.model_copy(update=update)
    cls = type(model)
    copy = cls.__new__(cls)
    _set = object.__setattr__
    _set(copy, "__dict__", {**model.__dict__, **update})
    extra = model.__pydantic_extra__
    _set(copy, "__pydantic_extra__", None if extra is None else dict(extra))
    _set(copy, "__pydantic_fields_set__", model.__pydantic_fields_set__ | update.keys())
    private = getattr(model, "__pydantic_private__", None)
    if private is not None:
        private = {k: v for k, v in private.items() if v is not PydanticUndefined}
    _set(copy, "__pydantic_private__", private)
    return copy


__all__ = ["copied"]
