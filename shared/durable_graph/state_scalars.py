"""Fields whose check of a JSON value is a type test: `str`, `int` or `bool` (each optionally
`| None`), and lists of them, declared without constraints.

For such a field, pydantic's `TypeAdapter(annotation)` given a value of exactly that type (an
`int` for `int`, never a `bool`; a `str`, never a subclass) returns it unchanged, and dumping it
as JSON gives it back: `StateFields._field` may skip both (they were 2 of a step's pydantic
calls for every field a node wrote). Any other value (a number as a string, a subclass, a
float) still goes through the adapter, which converts or refuses it as it always did. The
adapter of a bare annotation does not see the model's configuration (`str_max_length`,
`strict`), so skipping it changes nothing that configuration would.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import Any

_SCALARS = (str, int, bool)

# Whether a value is one of those the field's adapter would hand back unchanged.
Plain = Callable[[Any], bool]


def plain_check(annotation: Any) -> Plain | None:
    """The type test of a field declared `annotation` (without constraints), or None when its
    adapter may change or refuse a value of the right type (anything but the forms above)."""
    scalar = _scalar(annotation)
    if scalar is not None:
        return scalar
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation) or (Any,)
        each = _scalar(item)
        if each is not None:
            return lambda value: type(value) is list and all(map(each, value))
    return None


def _scalar(annotation: Any) -> Plain | None:
    if annotation in _SCALARS:
        return lambda value: type(value) is annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if len(args) == 2 and type(None) in args:
            (kind,) = [arg for arg in args if arg is not type(None)]
            if kind in _SCALARS:
                return lambda value: value is None or type(value) is kind
    return None


__all__ = ["Plain", "plain_check"]
