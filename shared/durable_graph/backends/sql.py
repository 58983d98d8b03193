"""The SQL the embedded (SQLite) and PostgreSQL stores share, written once.

Both keep the same tables and columns (`local/schema.py`, `backends/postgres/migrations.py`)
and read them with the same statements; what differs is spelling, which a `Dialect` holds: the
driver's placeholder (sqlite3's `?`, psycopg's `%s`) and how a text column sorts in byte order
(SQLite compares bytes already; PostgreSQL's default collation does not, `COLLATE "C"` does).
Statements here are written with `?` and spelt for a driver by `Dialect.sql`.

What is not here differs in more than spelling: the conditional writes (SQLite checks and writes
inside one `BEGIN IMMEDIATE` transaction; PostgreSQL puts each condition in its one statement,
`ON CONFLICT ... DO NOTHING` / `RETURNING`, and holds no lock across round trips), SQLite's
compressed row bodies and the revision it keeps out of a thread's body, and the queues' leases
(`FOR UPDATE SKIP LOCKED` has no SQLite counterpart; SQLite's one writer needs none).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from durable_graph.ports.transition_queue import Delivery, TransitionMessage


@dataclass(frozen=True)
class Dialect:
    placeholder: str  # the driver's parameter marker
    byte_order: str = ""  # appended to a text column to compare it byte by byte

    def sql(self, statement: str) -> str:
        """`statement`, written with `?` markers, spelt for this driver."""
        if self.placeholder == "?":
            return statement
        return statement.replace("?", self.placeholder)


SQLITE = Dialect("?")
POSTGRES = Dialect("%s", byte_order=' COLLATE "C"')

GET_CHECKPOINT = "SELECT body FROM checkpoints WHERE thread_id = ? AND step = ?"
HEAD_CHECKPOINT = (
    "SELECT step, body FROM checkpoints WHERE thread_id = ? ORDER BY step DESC LIMIT 1"
)
REWRITE_CHECKPOINT = "UPDATE checkpoints SET body = ? WHERE thread_id = ? AND step = ?"
GET_RECORD = "SELECT version, body FROM records WHERE thread_id = ? AND key = ?"
# A lease is settled by its (row id, receipt) (`lease_of`): a primary-key lookup, and a receipt
# that is no longer the row's (the lease ran out, another worker took it) matches nothing.
DELETE_LEASED = "DELETE FROM queue WHERE id = ? AND receipt = ?"
RELEASE_LEASED = "UPDATE queue SET visible_at = ?, receipt = NULL WHERE id = ? AND receipt = ?"
BURY = "INSERT INTO dead_letters (dedup_id, body, reason, failed_at) VALUES (?, ?, ?, ?)"

Query = tuple[str, list[Any]]


def list_checkpoints_query(
    dialect: Dialect,
    thread_id: str,
    *,
    newest_first: bool,
    before_step: int | None,
    limit: int | None,
) -> Query:
    """`CheckpointStore.list_checkpoints` as one statement and its parameters."""
    sql = "SELECT step, body FROM checkpoints WHERE thread_id = ?"
    params: list[Any] = [thread_id]
    if before_step is not None:
        sql += " AND step < ?"
        params.append(before_step)
    sql += f" ORDER BY step {'DESC' if newest_first else 'ASC'}"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return dialect.sql(sql), params


def page_threads_query(
    dialect: Dialect,
    *,
    status: str | None,
    prefix: str,
    newest_first: bool,
    limit: int,
    start: Sequence[Any] | None,
    statuses: Sequence[str] = (),
) -> Query:
    """`CheckpointStore.page_threads` as one range read in `(updated_at, thread_id)` byte order
    (as every other store and the cursor compare keys), one row past the page (`listing.cut`).

    `statuses` (every status a thread can have): a page of every status is read as one range per
    status of the `(status, updated_at)` index, merged, for a store that keeps no index on
    `(updated_at, thread_id)` (the embedded one: that index was a page more in every commit that
    moved a thread's head); at most `len(statuses)` times the page is read."""
    if status is None and statuses:
        parts = [_page_range(dialect, s, prefix, newest_first, limit, start) for s in statuses]
        order = "DESC" if newest_first else "ASC"
        c = dialect.byte_order
        merged = " UNION ALL ".join(f"SELECT * FROM ({part[0]})" for part in parts)
        sql = f"SELECT body FROM ({merged}) ORDER BY updated_at{c} {order}, thread_id{c} {order}"
        sql += " LIMIT ?"
        params = [param for part in parts for param in part[1]]
        return dialect.sql(sql), [*params, limit + 1]
    sql, params = _page_range(dialect, status, prefix, newest_first, limit, start)
    return dialect.sql(sql), params


def _page_range(
    dialect: Dialect,
    status: str | None,
    prefix: str,
    newest_first: bool,
    limit: int,
    start: Sequence[Any] | None,
) -> Query:
    """One range of threads in `(updated_at, thread_id)` order, the page and one row more,
    with `?` markers."""
    where: list[str] = []
    params: list[Any] = []
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if prefix:
        where.append("substr(thread_id, 1, ?) = ?")
        params += [len(prefix), prefix]
    c = dialect.byte_order
    if start is not None:
        where.append(f"(updated_at{c}, thread_id{c}) {'<' if newest_first else '>'} (?, ?)")
        params += list(start)
    order = "DESC" if newest_first else "ASC"
    sql = "SELECT body, updated_at, thread_id FROM threads"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY updated_at{c} {order}, thread_id{c} {order} LIMIT ?"
    params.append(limit + 1)
    return sql, params


def parse_message(body: str | bytes) -> TransitionMessage | str:
    """The message a queue row holds, or why it holds none (the reason stored with the dead
    letter)."""
    try:
        return TransitionMessage.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        return f"malformed transition message: {where}: {first['msg']}"


def lease_of(delivery: Delivery) -> tuple[int, str]:
    """(row id, receipt) of a lease: the id leads the receipt (-1 for a foreign receipt, which
    then matches nothing), so settling it is a primary-key lookup."""
    head = delivery.receipt.split(":", 1)[0]
    return (int(head) if head.isdigit() else -1, delivery.receipt)


__all__ = [
    "BURY",
    "DELETE_LEASED",
    "GET_CHECKPOINT",
    "GET_RECORD",
    "HEAD_CHECKPOINT",
    "POSTGRES",
    "RELEASE_LEASED",
    "REWRITE_CHECKPOINT",
    "SQLITE",
    "Dialect",
    "Query",
    "lease_of",
    "list_checkpoints_query",
    "page_threads_query",
    "parse_message",
]
