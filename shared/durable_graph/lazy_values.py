"""The values of an opt-in lazy read (`get_state(config, lazy=True)`, `docs/record-format.md`
§7, §12): a read-only `Mapping` whose fields are read from the store on first access, and a
`LazySequence` for a list field, whose length is known without its items and whose items are
fetched piece by piece (a snapshot segment, or the items a row appended), only the pieces an
index, a slice or an iteration touches.

Why not a `list` subclass: CPython's C code reads a list's own storage, not its methods, so
pydantic, `list.__eq__` and `[0] + lazy` would see an empty list, silently. A
`collections.abc.Sequence` that is not a list fails loudly where a list is required
(`json.dumps`, a pydantic `list` field): `list(seq)` is the eager list. That is why lazy reads
are opt-in: the default read hands out plain `dict`s and `list`s, as LangGraph does.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, overload

__all__ = ["Convert", "FieldSource", "LazySequence", "LazyValues"]

Convert = Callable[[list[Any]], list[Any]]  # applied to each piece's items as it is loaded
Fetch = Callable[[list[int]], list[list[Any]]]  # the items of the pieces at these positions


class LazySequence(Sequence[Any]):
    """A list field of a lazy read: `counts[i]` items in piece `i`, fetched by `fetch` (the
    pieces given in `known` are at hand). Read-only; equal to a list or another sequence of
    this kind with equal items; pickled and copied as the plain list."""

    __slots__ = ("_convert", "_counts", "_fetch", "_lock", "_pieces", "_starts")

    def __init__(
        self,
        counts: Sequence[int],
        fetch: Fetch,
        known: Mapping[int, list[Any]] | None = None,
        convert: Convert | None = None,
    ) -> None:
        self._counts = list(counts)
        self._starts: list[int] = []
        total = 0
        for count in self._counts:
            self._starts.append(total)
            total += count
        self._starts.append(total)
        self._fetch = fetch
        self._convert = convert
        self._lock = threading.Lock()
        self._pieces: list[list[Any] | None] = [None] * len(self._counts)
        for index, items in (known or {}).items():
            self._pieces[index] = convert(items) if convert is not None else items

    def __len__(self) -> int:
        return self._starts[-1]

    def _loaded(self, first: int, last: int) -> list[list[Any]]:
        """Pieces `first` to `last` (inclusive), the missing ones fetched in one batch."""
        with self._lock:
            missing = [i for i in range(first, last + 1) if self._pieces[i] is None]
            if missing:
                for index, items in zip(missing, self._fetch(missing), strict=True):
                    if len(items) != self._counts[index]:  # the fetcher checks; never here
                        raise AssertionError(f"piece {index}: {len(items)} items, not counted")
                    self._pieces[index] = self._convert(items) if self._convert else items
            return [p for p in self._pieces[first : last + 1] if p is not None]

    def _piece_of(self, position: int) -> int:
        return bisect.bisect_right(self._starts, position) - 1

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            positions = range(len(self))[index]
            if not positions:
                return []
            low, high = min(positions), max(positions)
            first, last = self._piece_of(low), self._piece_of(high)
            items = [item for piece in self._loaded(first, last) for item in piece]
            offset = self._starts[first]
            return items[
                slice(positions.start - offset, _stop(positions.stop - offset), positions.step)
            ]
        position = index + len(self) if index < 0 else index
        if not 0 <= position < len(self):
            raise IndexError("lazy sequence index out of range")
        piece = self._piece_of(position)
        return self._loaded(piece, piece)[0][position - self._starts[piece]]

    def __iter__(self) -> Iterator[Any]:
        for index in range(len(self._counts)):  # one piece at a time
            yield from self._loaded(index, index)[0]

    def __reversed__(self) -> Iterator[Any]:
        for index in reversed(range(len(self._counts))):
            yield from reversed(self._loaded(index, index)[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, list | LazySequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # unhashable, as a list

    def __repr__(self) -> str:
        return f"<LazySequence of {len(self)} items in {len(self._counts)} pieces>"

    def __reduce__(self) -> tuple[type[list[Any]], tuple[list[Any]]]:
        return list, (list(self),)


def _stop(stop: int) -> int | None:
    """A slice's stop relative to the loaded items (-1 past the start of a reversed range
    means 'through the first item': None)."""
    return None if stop < 0 else stop


class FieldSource:
    """Where a lazy read's fields come from (`backends/lazy_state.py`): the field names and
    one field's value. Both may read the store; a `LazyValues` asks each at most once."""

    def names(self) -> list[str]:
        raise NotImplementedError

    def value(self, name: str, convert: Convert | None) -> Any:
        raise NotImplementedError


class LazyValues(Mapping[str, Any]):
    """A lazy read's state: a read-only mapping whose fields are read on first access (a
    list field as a `LazySequence`, `convert`ed item by item where a converter is given:
    chat messages as LangChain objects). Equal to a dict of equal values; pickled and copied
    as the plain dict of plain values."""

    def __init__(self, source: FieldSource, converters: Mapping[str, Convert] | None = None):
        self._source = source
        self._converters = dict(converters or {})
        self._names: list[str] | None = None
        self._values: dict[str, Any] = {}
        self._lock = threading.RLock()

    def _field_names(self) -> list[str]:
        with self._lock:
            if self._names is None:
                self._names = self._source.names()
            return self._names

    def __getitem__(self, name: str) -> Any:
        with self._lock:
            if name not in self._values:
                if name not in self._field_names():
                    raise KeyError(name)
                self._values[name] = self._source.value(name, self._converters.get(name))
            return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._field_names())

    def __len__(self) -> int:
        return len(self._field_names())

    def __contains__(self, name: object) -> bool:
        return name in self._field_names()

    def __repr__(self) -> str:
        return f"<LazyValues of fields {self._field_names()!r}, read on access>"

    def __reduce__(self) -> tuple[type[dict[str, Any]], tuple[dict[str, Any]]]:
        return dict, ({name: _plain(self[name]) for name in self},)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, LazySequence) else value
