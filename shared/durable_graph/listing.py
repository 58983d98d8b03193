"""Paging through thread records: the order, the cursor, and the page every store returns.

A store's `page_threads` orders threads by `(updated_at, thread_id)` (newest first by default,
oldest first for an inbox), filters by status and by a thread id prefix, and hands back at most
`limit` records with a cursor to the next page. The cursor is opaque to callers: it is the key
of the last record handed out, so a page is stable while threads change status (a thread that
moved since simply appears in the pages of its new `updated_at`).

Stores that read an index in order (SQLite, DynamoDB's status index) use `key_of`/`after` to
resume past the cursor; the in-memory store uses `page_of` over all records.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from durable_graph.checkpoint import ThreadRecord
from durable_graph.errors import InvalidInput

STATUSES = ("running", "suspended", "completed", "failed")
MAX_PAGE = 500
Key = tuple[str, str]


class ThreadPage(BaseModel):
    """One page of threads; `cursor` is None on the last page."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threads: list[ThreadRecord] = Field(default_factory=list)
    cursor: str | None = None


def key_of(record: ThreadRecord) -> Key:
    return (record.updated_at, record.thread_id)


def encode_cursor(key: Key) -> str:
    raw = json.dumps(list(key), separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None) -> Key | None:
    """The key a cursor names; a cursor no store handed out is `InvalidInput` (field cursor)."""
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        value = None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(part, str) for part in value)
    ):
        raise InvalidInput("cursor is not one this listing handed out", field="cursor")
    return (value[0], value[1])


def check_query(status: str | None, limit: int) -> None:
    """Refuse a query before any store reads: an unknown status or a limit out of range."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(
            f"status must be one of {', '.join(STATUSES)}, not {status!r}", field="status"
        )
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", field="limit")


def after(key: Key, cursor: Key | None, newest_first: bool) -> bool:
    """Whether a record with `key` comes after the cursor in the listing's order."""
    if cursor is None:
        return True
    return key < cursor if newest_first else key > cursor


def matches(record: ThreadRecord, status: str | None, prefix: str) -> bool:
    return (status is None or record.status == status) and record.thread_id.startswith(prefix)


def page_of(
    records: Iterable[ThreadRecord],
    *,
    status: str | None,
    prefix: str,
    newest_first: bool,
    limit: int,
    cursor: str | None,
) -> ThreadPage:
    """The page over records held in full (any order): filter, sort, cut."""
    check_query(status, limit)
    start = decode_cursor(cursor)
    chosen = sorted(
        (
            r
            for r in records
            if matches(r, status, prefix) and after(key_of(r), start, newest_first)
        ),
        key=key_of,
        reverse=newest_first,
    )
    return cut(chosen, limit)


def cut(ordered: list[ThreadRecord], limit: int) -> ThreadPage:
    """The first `limit` of records already in listing order (read `limit + 1` to know if
    another page follows)."""
    page = ordered[:limit]
    more = len(ordered) > limit
    return ThreadPage(threads=page, cursor=encode_cursor(key_of(page[-1])) if more else None)


__all__ = [
    "MAX_PAGE",
    "STATUSES",
    "ThreadPage",
    "after",
    "check_query",
    "cut",
    "decode_cursor",
    "encode_cursor",
    "key_of",
    "matches",
    "page_of",
]
