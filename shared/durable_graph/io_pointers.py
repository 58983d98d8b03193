"""Io responses kept once (`Checkpoint.stored`): where a step's io response is also one of its
inline changes, the stored row keeps a pointer to that change instead of a second copy, and a
reader puts the value back from it. Compared as JSON, not with `==`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class InlineChange(Protocol):
    """What these read of a record's change (`checkpoint.Change`, which imports this)."""

    @property
    def op(self) -> str: ...

    @property
    def v(self) -> Any: ...

    @property
    def inline(self) -> bool: ...


def locate(changes: Mapping[str, InlineChange], value: Any) -> list[Any] | None:
    """Where `value` is in a step's inline changes: `[field]` (set whole) or `[field, i]`
    (the i-th item appended), else None."""
    for name, change in changes.items():
        if not change.inline:
            continue
        if change.op == "add" and isinstance(change.v, list):
            for position, item in enumerate(change.v):
                if same(item, value):
                    return [name, position]
        elif change.op in ("set", "keep") and same(change.v, value):
            return [name]
    return None


def at(changes: Mapping[str, InlineChange], path: list[Any]) -> Any:
    """The value a pointer `locate` gave names (None for a malformed one: the hash fails)."""
    change = changes.get(path[0]) if path and isinstance(path[0], str) else None
    if change is None:
        return None
    if len(path) == 1:
        return change.v
    position = path[1]
    items = change.v
    if isinstance(items, list) and isinstance(position, int) and 0 <= position < len(items):
        return items[position]
    return None


def same(a: Any, b: Any) -> bool:
    """JSON equality that, unlike `==`, tells `1`, `1.0` and `True` apart."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


__all__ = ["InlineChange", "at", "locate", "same"]
