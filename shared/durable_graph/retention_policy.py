"""A graph's retention policy: how long its threads' values may be kept.

Declared where the graph is compiled (`builder.compile(retention=Retention(days=30))`) and
carried out by `durable-graph retention run` (`retention.py`), which erases the values of steps
older than `days` and leaves the chain and a signed tombstone. Kept apart from `retention.py`
so that compiling a graph does not import the erasure machinery.
"""

from __future__ import annotations

from dataclasses import dataclass

from durable_graph.errors import InvalidInput


@dataclass(frozen=True)
class Retention:
    """Values of steps older than `days` are erased; `fields` limits it to those state fields
    (default: every field). Example: `Retention(days=30, fields=("email", "messages"))`."""

    days: float
    fields: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not self.days > 0:
            raise InvalidInput(f"retention days must be > 0, not {self.days}", field="retention")
        if self.fields is not None and not self.fields:
            raise InvalidInput("retention fields, when given, name at least one", field="retention")


__all__ = ["Retention"]
