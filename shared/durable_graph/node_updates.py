"""What a node returns, as JSON values: an update dict whatever form the node wrote it in."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from durable_graph.errors import InvalidInput


def holds_models(value: Any) -> bool:
    """A pydantic model or dataclass instance in a value, at any depth of lists and dicts."""
    if isinstance(value, BaseModel) or (
        dataclasses.is_dataclass(value) and not isinstance(value, type)
    ):
        return True
    if isinstance(value, (list, tuple)):  # a tuple: an `A | B` union is slower
        return any(holds_models(item) for item in value)
    if isinstance(value, dict):
        return any(holds_models(item) for item in value.values())
    return False


def plain(value: Any) -> Any:
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
        return {str(k): plain(v) for k, v in update.items()}
    raise InvalidInput(
        f"node {node!r} returned {type(update).__name__}; a node returns a dict of state "
        "updates or None",
        field=node,
    )


__all__ = ["holds_models", "normalise_update", "plain"]
