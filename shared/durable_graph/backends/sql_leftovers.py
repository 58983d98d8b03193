"""`ports.leftovers` in a `leftovers` table, the same on SQLite and PostgreSQL (`sql.Dialect`).

Layout: `leftovers (id, at, body)`: `id` the row's own key (`Leftover.key`), `at` when it was
left (ISO, compared byte by byte: oldest first), `body` the `Leftover` as JSON. Nothing here is
written by a process that may delete payloads (every embedded and PostgreSQL process, so far):
its lost appends and retired segments are deleted at once (`disposal.py`). A process opened
with `deletes_payloads=False` leaves them here, and `leftovers.clear_leftovers` run by one that
may clears them, as the AWS sweeper does with the DynamoDB table's (`backends/aws/leftovers.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from durable_graph.backends.sql import Dialect
from durable_graph.checkpoint import PayloadRef
from durable_graph.clock import Clock, SystemClock, iso
from durable_graph.ports.leftovers import Leftover, LeftoverKind

Connect = Callable[[], AbstractContextManager[Any]]  # a connection whose `execute` runs SQL


class SqlLeftovers:
    """Leftovers in the store's own database: `read` and `write` open a connection to read
    and a transaction to write (joining the caller's unit of work where there is one)."""

    def __init__(self, dialect: Dialect, read: Connect, write: Connect, clock: Clock | None):
        self.dialect = dialect
        self._read = read
        self._write = write
        self.clock = clock or SystemClock()

    def leave(
        self,
        thread_id: str,
        refs: Sequence[PayloadRef],
        *,
        step: int | None = None,
        row: str | None = None,
        kind: LeftoverKind = "lost",
    ) -> None:
        at = iso(self.clock.now())
        left = Leftover(thread_id=thread_id, step=step, row=row, kind=kind, refs=list(refs), at=at)
        with self._write() as conn:
            conn.execute(
                self.dialect.sql("INSERT INTO leftovers (at, body) VALUES (?, ?)"),
                (at, left.model_dump_json()),
            )

    def due(self, before: datetime, limit: int) -> list[Leftover]:
        at = f"at{self.dialect.byte_order}"
        query = f"SELECT id, body FROM leftovers WHERE {at} < ? ORDER BY {at}, id LIMIT ?"
        with self._read() as conn:
            rows = conn.execute(self.dialect.sql(query), (iso(before), limit)).fetchall()
        return [
            Leftover.model_validate_json(body).model_copy(update={"key": str(key)})
            for key, body in rows
        ]

    def forget(self, leftover: Leftover) -> None:
        with self._write() as conn:
            conn.execute(
                self.dialect.sql("DELETE FROM leftovers WHERE id = ?"), (int(leftover.key),)
            )


__all__ = ["SqlLeftovers"]
