"""CheckpointStore on SQLite: the primary key (thread_id, step) is the commit condition."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, get_args

from pydantic import ValidationError

from durable_graph.backends.local.db import Database
from durable_graph.backends.local.row_bodies import (
    BODY_ERRORS,
    decode_body,
    encode_body,
    model_text,
)
from durable_graph.backends.sql import (
    GET_CHECKPOINT,
    GET_RECORD,
    HEAD_CHECKPOINT,
    REWRITE_CHECKPOINT,
    SQLITE,
    list_checkpoints_query,
    page_threads_query,
)
from durable_graph.canonical import compact_json
from durable_graph.checkpoint import Checkpoint, Status, ThreadRecord, VersionedRecord
from durable_graph.errors import CorruptRecord, RecordConflict, StepConflict, StepNotFound
from durable_graph.listing import ThreadPage, check_query, cut, decode_cursor
from durable_graph.ports.commit_writes import CommitWrites

INSERT_CHECKPOINT = "INSERT INTO checkpoints (thread_id, step, body) VALUES (?, ?, ?)"
GET_THREAD = "SELECT revision, body FROM threads WHERE thread_id = ?"
PUT_NEW_RECORD = "INSERT OR IGNORE INTO records (thread_id, key, version, body) VALUES (?, ?, 1, ?)"
PUT_RECORD = (
    "UPDATE records SET version = ?, body = ? WHERE thread_id = ? AND key = ? AND version = ?"
)
_THREAD_ROW = "status, updated_at, body, head_step, created_at, origin"
PUT_NEW_THREAD = (
    f"INSERT OR IGNORE INTO threads (thread_id, revision, {_THREAD_ROW}) "
    "VALUES (?, 1, ?, ?, ?, ?, ?, ?)"
)
PUT_THREAD = (
    "UPDATE threads SET status = ?, updated_at = ?, body = ?, head_step = ?, revision = ?, "
    "created_at = ?, origin = ? WHERE thread_id = ? AND revision = ?"
)
# The forward-only head write: insert, or replace a head at an older step (the WHERE), carrying
# the stored created_at and origin into the new body (spliced in as text after its other fields:
# `?8` is the body without them and its closing brace); the revision counts the writes. The
# columns spare a parse of the stored body; a row written before them has them empty and is
# read from its body (json_extract), once: this write fills them.
_OLD_CREATED = "coalesce(threads.created_at, json_extract(threads.body, '$.created_at'))"
_OLD_ORIGIN = (
    "CASE WHEN threads.created_at IS NULL THEN json_extract(threads.body, '$.origin') "
    "ELSE threads.origin END"
)
ADVANCE_THREAD = (
    f"INSERT INTO threads (thread_id, revision, {_THREAD_ROW}) VALUES (?1, 1, ?2, ?3, ?4, ?5, "
    "?6, ?7) ON CONFLICT (thread_id) DO UPDATE SET status = excluded.status, "
    "updated_at = excluded.updated_at, revision = threads.revision + 1, "
    f"head_step = excluded.head_step, created_at = {_OLD_CREATED}, origin = {_OLD_ORIGIN}, "
    f"""body = ?8 || ',"created_at":' || json_quote({_OLD_CREATED}) || ',"origin":' || """
    f"coalesce({_OLD_ORIGIN}, 'null') || '}}' "
    "WHERE coalesce(threads.head_step, json_extract(threads.body, '$.head_step')) < ?5"
)
_CARRIED = {"revision", "created_at", "origin"}  # not in the body `ADVANCE_THREAD` is given
STATUSES: tuple[str, ...] = get_args(Status)  # a listing of every thread reads each one's range
# Keys per `IN (...)` query of `get_records`: far below SQLite's bound-parameter limit.
IN_CHUNK = 500
WRITTEN_KEPT = 256  # threads whose last appended row is kept for `_row` (as `RecordStore`'s)


class SqliteCheckpointStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        # The last row this process appended per thread: (step, stored body, the record). A
        # read that finds exactly those bytes at that step takes the record's stored form
        # instead of inflating and validating the body again (the head read of a resume, of a
        # thread this process suspended). Keyed by the bytes, so a row rolled back, rewritten
        # (erasure) or written by another process is parsed as ever.
        self._written: OrderedDict[str, tuple[int, str | bytes, Checkpoint]] = OrderedDict()
        self._written_lock = threading.Lock()

    def append_checkpoint(self, checkpoint: Checkpoint) -> None:
        self.append_with(checkpoint, None)

    def append_with(self, checkpoint: Checkpoint, writes: CommitWrites | None) -> bool:
        """`CombinedCommit`: the step and its companions in one write (one transaction of its
        own, or part of the unit of work that holds one), each companion on its own condition:
        a head already further on or a record not at its expected version is left as it is,
        with no read (they are follow-ups, never conditions of the step)."""
        body = encode_body(checkpoint.to_stored_json())
        tid = checkpoint.thread_id
        try:
            with self.db.write() as conn:
                # INSERT without OR REPLACE: the PK makes a second writer of the step fail.
                conn.execute(INSERT_CHECKPOINT, (tid, checkpoint.step, body))
                if writes is not None:
                    if writes.head is not None:
                        _advance(conn, writes.head)
                    for record in writes.records:
                        _put_record(conn, tid, record.key, record.value, record.expected_version)
        except sqlite3.IntegrityError as exc:
            existing = self.get_checkpoint(tid, checkpoint.step)
            raise StepConflict(tid, checkpoint.step, existing) from exc
        self._remember(checkpoint, body)
        return True

    def _remember(self, checkpoint: Checkpoint, body: str | bytes) -> None:
        """Keep the row just appended for `_row`, where its stored form is what a parse of
        `body` gives: format 2, and a `parent` that the row keeps or that a parse derives
        (`Checkpoint.from_stored_json`)."""
        if checkpoint.format < 2 or (checkpoint.step > 0 and checkpoint.parent is None):
            return
        with self._written_lock:
            self._written[checkpoint.thread_id] = (checkpoint.step, body, checkpoint)
            self._written.move_to_end(checkpoint.thread_id)
            if len(self._written) > WRITTEN_KEPT:
                self._written.popitem(last=False)

    def _row(
        self, thread_id: str, step: int, body: str | bytes, known: Checkpoint | None = None
    ) -> Checkpoint:
        """The record a row holds: the stored form of the one this process appended there
        when the row is still those bytes (`known` itself when that is the record it holds,
        `RecordStore`'s `KnownHeads`), else parsed."""
        with self._written_lock:
            written = self._written.get(thread_id)
        if written is not None and written[0] == step and written[1] == body:
            if known is not None and known.step == step and known.hash == written[2].hash:
                return known
            # As read back: without the chunks its sealing wrote (`Checkpoint.fresh`).
            return written[2].stored().with_fresh(())
        return _parse(thread_id, step, body)

    def get_checkpoint(self, thread_id: str, step: int) -> Checkpoint | None:
        with self.db.read() as conn:
            row = conn.execute(GET_CHECKPOINT, (thread_id, step)).fetchone()
        return self._row(thread_id, step, row[0]) if row else None

    def rewrite_checkpoint(self, checkpoint: Checkpoint) -> None:
        with self.db.write() as conn:
            changed = conn.execute(
                REWRITE_CHECKPOINT,
                (encode_body(checkpoint.to_stored_json()), checkpoint.thread_id, checkpoint.step),
            ).rowcount
        if changed != 1:
            raise StepNotFound(checkpoint.thread_id, checkpoint.step)

    def head_checkpoint(self, thread_id: str) -> Checkpoint | None:
        return self.head_checkpoint_or(thread_id, None)

    def head_checkpoint_or(self, thread_id: str, known: Checkpoint | None) -> Checkpoint | None:
        """`records.KnownHeads`: the head row, or `known` when the row is the one this
        process appended for it (its bytes unchanged since).

        Handed out only once every durable commit of this process is synced (`db.durable`):
        another thread may have committed this head and not synced it yet, and a head read
        is what a run returns to its caller (`invoke` waiting on a thread a worker of this
        process ran on), what `get_state` shows, what a resume decides on."""
        with self.db.read() as conn:
            row = conn.execute(HEAD_CHECKPOINT, (thread_id,)).fetchone()
        self.db.durable()
        return self._row(thread_id, row[0], row[1], known) if row else None

    def list_checkpoints(
        self,
        thread_id: str,
        *,
        newest_first: bool = True,
        before_step: int | None = None,
        limit: int | None = None,
    ) -> list[Checkpoint]:
        sql, params = list_checkpoints_query(
            SQLITE, thread_id, newest_first=newest_first, before_step=before_step, limit=limit
        )
        with self.db.read() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [_parse(thread_id, r[0], r[1]) for r in rows]

    def get_thread(self, thread_id: str) -> ThreadRecord | None:
        with self.db.read() as conn:
            row = conn.execute(GET_THREAD, (thread_id,)).fetchone()
        return _thread(row[0], row[1]) if row else None

    def put_thread(self, record: ThreadRecord, *, expected_revision: int | None) -> ThreadRecord:
        stored = record.model_copy(update={"revision": (expected_revision or 0) + 1})
        origin = stored.origin.model_dump_json() if stored.origin is not None else None
        row = (stored.status, stored.updated_at, stored.model_dump_json(), stored.head_step)
        with self.db.write() as conn:
            if expected_revision is None:
                # Create iff absent: OR IGNORE lets the primary key decide.
                changed = conn.execute(
                    PUT_NEW_THREAD, (record.thread_id, *row, stored.created_at, origin)
                ).rowcount
            else:
                # Replace iff at the expected revision: the WHERE is the condition (no read).
                changed = conn.execute(
                    PUT_THREAD,
                    (
                        *row,
                        stored.revision,
                        stored.created_at,
                        origin,
                        record.thread_id,
                        expected_revision,
                    ),
                ).rowcount
            if changed != 1:
                # The condition was lost: the current head is read only now, for the conflict.
                found = conn.execute(GET_THREAD, (record.thread_id,)).fetchone()
                current = _thread(found[0], found[1]) if found else None
                raise RecordConflict(f"thread#{record.thread_id}", current)
        return stored

    def advance_thread(self, record: ThreadRecord) -> bool:
        with self.db.write() as conn:
            return _advance(conn, record)

    def list_threads(self, *, status: str | None = None, limit: int = 1000) -> list[ThreadRecord]:
        sql = "SELECT revision, body FROM threads"
        params: list[Any] = []
        if status is not None:
            sql += " WHERE status = ?"
            params.append(status)
        sql += " ORDER BY updated_at LIMIT ?"
        params.append(limit)
        with self.db.read() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [_thread(r[0], r[1]) for r in rows]

    def page_threads(
        self,
        *,
        status: str | None = None,
        prefix: str = "",
        newest_first: bool = True,
        limit: int = 50,
        cursor: str | None = None,
    ) -> ThreadPage:
        """Indexed range reads of `threads_by_status` (one, or one per status merged when no
        status is asked for: `page_threads_query`), whatever the number of threads."""
        check_query(status, limit)
        sql, params = page_threads_query(
            SQLITE,
            status=status,
            prefix=prefix,
            newest_first=newest_first,
            limit=limit,
            start=decode_cursor(cursor),
            statuses=STATUSES,
        )
        with self.db.read() as conn:
            rows = conn.execute(sql, params).fetchall()
        return cut([ThreadRecord.model_validate_json(r[0]) for r in rows], limit)

    def get_record(self, thread_id: str, key: str) -> VersionedRecord | None:
        with self.db.read() as conn:
            row = conn.execute(
                GET_RECORD,
                (thread_id, key),
            ).fetchone()
        return VersionedRecord(key=key, value=_value(row[1]), version=row[0]) if row else None

    def put_record(
        self, thread_id: str, key: str, value: dict[str, Any], *, expected_version: int | None
    ) -> VersionedRecord:
        with self.db.write() as conn:
            if not _put_record(conn, thread_id, key, value, expected_version):
                # The condition was lost: the current record is read only now, for the conflict.
                row = conn.execute(GET_RECORD, (thread_id, key)).fetchone()
                current = (
                    VersionedRecord(key=key, value=_value(row[1]), version=row[0]) if row else None
                )
                raise RecordConflict(key, current)
        return VersionedRecord(key=key, value=value, version=(expected_version or 0) + 1)

    def get_records(self, thread_id: str, keys: Sequence[str]) -> dict[str, VersionedRecord]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, VersionedRecord] = {}
        with self.db.read() as conn:
            for start in range(0, len(wanted), IN_CHUNK):
                chunk = wanted[start : start + IN_CHUNK]
                rows = conn.execute(
                    "SELECT key, version, body FROM records WHERE thread_id = ? AND key IN "
                    f"({', '.join('?' * len(chunk))})",
                    (thread_id, *chunk),
                ).fetchall()
                for key, version, body in rows:
                    found[key] = VersionedRecord(key=key, value=_value(body), version=version)
        return found

    def complete_task(
        self, thread_id: str, counter_key: str, member_key: str, value: dict[str, Any]
    ) -> tuple[bool, int]:
        # One write transaction (nested in `Backend.atomic` when the caller holds one): the
        # member and the counter change together or not at all, so a crash counts 0 or 1 times.
        with self.db.write() as conn:
            # OR IGNORE: the primary key decides whether this call is the member's first.
            created = (
                conn.execute(
                    "INSERT OR IGNORE INTO records (thread_id, key, version, body) "
                    "VALUES (?, ?, 1, ?)",
                    (thread_id, member_key, encode_body(compact_json(value))),
                ).rowcount
                == 1
            )
            row = conn.execute(
                GET_RECORD,
                (thread_id, counter_key),
            ).fetchone()
            count = int(_value(row[1]).get("count", 0)) if row else 0
            if not created:
                return False, count
            count += 1
            conn.execute(
                "INSERT OR REPLACE INTO records (thread_id, key, version, body) VALUES (?,?,?,?)",
                (
                    thread_id,
                    counter_key,
                    (row[0] if row else 0) + 1,
                    encode_body(compact_json({"count": count})),
                ),
            )
        return True, count

    def close(self) -> None:
        self.db.close()


def _advance(conn: sqlite3.Connection, record: ThreadRecord) -> bool:
    """Move the thread head forward to `record` (create it, or replace an older one), keeping
    the stored `created_at` and `origin`: whether it was written."""
    prefix = model_text(record, _CARRIED)[:-1]
    created = json.dumps(record.created_at)
    origin = record.origin.model_dump_json() if record.origin is not None else None
    body = f'{prefix},"created_at":{created},"origin":{origin or "null"}}}'
    params = (record.thread_id, record.status, record.updated_at, body, record.head_step)
    written = conn.execute(ADVANCE_THREAD, (*params, record.created_at, origin, prefix)).rowcount
    return bool(written == 1)


def _put_record(
    conn: sqlite3.Connection,
    thread_id: str,
    key: str,
    value: dict[str, Any],
    expected_version: int | None,
) -> bool:
    """Write a record iff absent (`expected_version` None) or at `expected_version`: whether
    it was written."""
    body = encode_body(compact_json(value))
    if expected_version is None:
        # Create iff absent: OR IGNORE lets the primary key decide.
        return bool(conn.execute(PUT_NEW_RECORD, (thread_id, key, body)).rowcount == 1)
    # Replace iff at the expected version: the WHERE is the condition, in place (no read
    # before it, no delete and insert of OR REPLACE).
    changed = conn.execute(
        PUT_RECORD, (expected_version + 1, body, thread_id, key, expected_version)
    ).rowcount
    return bool(changed == 1)


def _parse(thread_id: str, step: int, body: str | bytes) -> Checkpoint:
    try:
        stored = decode_body(body)
    except BODY_ERRORS as exc:
        raise CorruptRecord(thread_id, step, f"compressed or packed row body: {exc}") from exc
    try:
        return Checkpoint.from_stored_json(stored)
    except ValidationError as exc:
        raise CorruptRecord(thread_id, step, str(exc.errors()[0]["msg"])) from exc


def _value(body: str | bytes) -> dict[str, Any]:
    """A record's value from its stored body (`row_bodies.py`: text, packed or compressed)."""
    value: dict[str, Any] = json.loads(decode_body(body))
    return value


def _thread(revision: int, body: str) -> ThreadRecord:
    """A thread row: its body, with the revision the row counts (`advance_thread` leaves it
    out of the body)."""
    return ThreadRecord.model_validate_json(body).model_copy(update={"revision": revision})
