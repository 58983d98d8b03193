"""A backend's unit of work that keeps `RecordStore`'s cache honest (`rolls_back_cache`): a unit
that appended a step and then rolled back forgets what it remembered, and the snapshot segments
its steps retired are deleted only once it committed (`segment_runs.Retirements`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

from durable_graph.backends.records import RecordStore


def rolls_back_cache(
    records: RecordStore, unit: Callable[[], AbstractContextManager[Any]]
) -> Callable[[], AbstractContextManager[Any]]:
    """`unit` (a backend's unit of work) that also makes `records` forget what it remembered
    when the unit ends in an exception (rolled back, or a COMMIT whose outcome is unknown),
    and delete the snapshot segments its steps retired only once it committed."""
    return functools.partial(_ForgettingUnit, records, unit)


class _ForgettingUnit:
    """`rolls_back_cache`'s unit of work. A class rather than a generator: a thread's steps
    enter it about 16 times, mostly nested; only the outermost of a thread holds the
    retirements' unit (a nested one would only pass through it)."""

    __slots__ = ("_inner", "_records", "_retiring", "_unit")

    def __init__(self, records: RecordStore, unit: Callable[[], AbstractContextManager[Any]]):
        self._records = records
        self._unit = unit
        self._inner: AbstractContextManager[Any] | None = None
        self._retiring: list[Callable[[], None]] | None = None

    def __enter__(self) -> Any:
        records = self._records
        units = records.units
        depth: int = getattr(units, "depth", 0)
        retiring = records.retirements.open_unit() if depth == 0 else None
        try:
            inner = self._unit()
            entered = inner.__enter__()
        except BaseException:
            records.forget()
            if retiring is not None:
                records.retirements.close_unit(retiring, committed=False)  # nothing is deleted
            raise
        self._inner, self._retiring = inner, retiring
        units.depth = depth + 1
        return entered

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        records = self._records
        records.units.depth -= 1
        retiring, inner = self._retiring, self._inner
        assert inner is not None  # entered
        try:
            suppressed = bool(inner.__exit__(kind, exc, tb))
        except BaseException:
            records.forget()
            if retiring is not None:
                records.retirements.close_unit(retiring, committed=False)
            raise
        failed = kind is not None and not suppressed
        if failed:
            records.forget()
        if retiring is not None:  # committed: what it retired goes
            records.retirements.close_unit(retiring, committed=not failed)
        return suppressed


__all__ = ["rolls_back_cache"]
