"""The leftovers port: payload objects a process that may not delete them leaves for one
that may (the AWS sweeper), and what one leftover holds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from durable_graph.checkpoint import PayloadRef

LeftoverKind = Literal["lost", "retired"]


class Leftover(BaseModel):
    """Payload objects of `thread_id` that nothing will name, left by a process that may not
    delete payload objects for one that may (`Leftovers`). `kind`: `lost`, the chunks a step
    (`step`) or a fan-out task's result row (`row`, `done#…`) wrote before it lost its
    conditional append; `retired`, the snapshot segments the merges of the snapshot of `step`
    replaced (`backends/segment_runs.py`), left once that step was committed. `at` is when
    (ISO), `key` the store's own key of it (set on read, never stored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    thread_id: str
    step: int | None = None
    row: str | None = None
    kind: LeftoverKind = "lost"
    refs: list[PayloadRef]
    at: str
    key: str = Field(default="", exclude=True)


class Leftovers(Protocol):
    """Where a process whose credentials may not delete payload objects (the AWS worker:
    deleting is erasure's alone) leaves what it cannot delete (`disposal.Disposal`), and where
    one that may (the AWS sweeper, `leftovers.clear_leftovers`) finds it again.

    Every backend has one (`tests/conformance/test_leftovers.py`), although only the AWS
    functions leave anything: every embedded, PostgreSQL and memory process may delete, so
    its own lost appends and retired segments are deleted at once; one built with
    `deletes_payloads=False` (a role without payload deletes, or a test of that path) leaves
    them here, and `leftovers.clear_leftovers` run by one that may clears them on any store.
    `due` is oldest first; a leftover stays until it is forgotten, however often it is read."""

    def leave(
        self,
        thread_id: str,
        refs: Sequence[PayloadRef],
        *,
        step: int | None = None,
        row: str | None = None,
        kind: LeftoverKind = "lost",
    ) -> None:
        """Keep `refs` (of `step`, or of the result row `row`, as `kind` says), stamped now; a
        store may split them into several leftovers."""
        ...

    def due(self, before: datetime, limit: int) -> list[Leftover]:
        """The oldest `limit` leftovers left before `before`, oldest first."""
        ...

    def forget(self, leftover: Leftover) -> None:
        """Drop `leftover` (its objects are dealt with); forgetting one already gone is no
        error."""
        ...
