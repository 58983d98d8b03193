"""CheckpointStore on PostgreSQL: the primary key (thread_id, step) is the commit condition.

Checkpoint and record bodies are `bytea`: the row's JSON with its sealed values as bytes
(`backends/packed_bodies.py`; a body written before, plain UTF-8 JSON, reads the same).

Every conditional write is one statement whose condition is in the statement itself, so it
needs no lock held across round trips and never aborts an enclosing unit of work (a failed
`INSERT` would: a lost condition is `ON CONFLICT DO NOTHING` or an `UPDATE` that matched no
row, then one read of the winner for the conflict error). Tables: `migrations.py`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from durable_graph.backends.packed_bodies import pack, unpack
from durable_graph.backends.postgres.db import Database
from durable_graph.backends.sql import (
    GET_CHECKPOINT,
    GET_RECORD,
    HEAD_CHECKPOINT,
    POSTGRES,
    REWRITE_CHECKPOINT,
    list_checkpoints_query,
    page_threads_query,
)
from durable_graph.canonical import compact_json
from durable_graph.checkpoint import Checkpoint, ThreadRecord, VersionedRecord
from durable_graph.errors import CorruptRecord, RecordConflict, StepConflict, StepNotFound
from durable_graph.listing import ThreadPage, check_query, cut, decode_cursor

# Keys per `= ANY(%s)` query of `get_records`.
ANY_CHUNK = 1000

_READ = "reading the checkpoint store"
_WRITE = "writing the checkpoint store"

# The statements the embedded store runs too (`backends/sql.py`), spelt for psycopg.
_GET_CHECKPOINT = POSTGRES.sql(GET_CHECKPOINT).encode()
_HEAD_CHECKPOINT = POSTGRES.sql(HEAD_CHECKPOINT).encode()
_REWRITE_CHECKPOINT = POSTGRES.sql(REWRITE_CHECKPOINT).encode()
_GET_RECORD = POSTGRES.sql(GET_RECORD).encode()

# complete_task in one statement: the member row is created iff absent (the primary key
# decides), and only then the counter is created at 1 or incremented under its row lock, so a
# member counts once whatever crashes or races; the statement is atomic on its own.
_COMPLETE = """
WITH member AS (
    INSERT INTO records (thread_id, key, version, body) VALUES (%(t)s, %(m)s, 1, %(v)s)
    ON CONFLICT DO NOTHING RETURNING 1
), counter AS (
    INSERT INTO records (thread_id, key, version, body)
    SELECT %(t)s, %(c)s, 1, convert_to('{"count":1}', 'UTF8') WHERE EXISTS (SELECT 1 FROM member)
    ON CONFLICT (thread_id, key) DO UPDATE SET
        version = records.version + 1,
        body = convert_to(
            '{"count":' || ((convert_from(records.body, 'UTF8')::json ->> 'count')::bigint + 1)
            || '}', 'UTF8')
    RETURNING (convert_from(body, 'UTF8')::json ->> 'count')::bigint AS count
)
SELECT EXISTS (SELECT 1 FROM member), (SELECT count FROM counter)
"""


class PostgresCheckpointStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def append_checkpoint(self, checkpoint: Checkpoint) -> None:
        with self.db.connection(_WRITE) as conn:
            # DO NOTHING on the primary key: a second writer of the step changes nothing.
            inserted = conn.execute(
                "INSERT INTO checkpoints (thread_id, step, body) VALUES (%s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                (checkpoint.thread_id, checkpoint.step, pack(checkpoint.to_stored_json())),
            ).rowcount
        if inserted != 1:
            existing = self.get_checkpoint(checkpoint.thread_id, checkpoint.step)
            raise StepConflict(checkpoint.thread_id, checkpoint.step, existing)

    def get_checkpoint(self, thread_id: str, step: int) -> Checkpoint | None:
        with self.db.connection(_READ) as conn:
            row = conn.execute(
                _GET_CHECKPOINT,
                (thread_id, step),
            ).fetchone()
        return _parse(thread_id, step, row[0]) if row else None

    def rewrite_checkpoint(self, checkpoint: Checkpoint) -> None:
        with self.db.connection(_WRITE) as conn:
            changed = conn.execute(
                _REWRITE_CHECKPOINT,
                (pack(checkpoint.to_stored_json()), checkpoint.thread_id, checkpoint.step),
            ).rowcount
        if changed != 1:
            raise StepNotFound(checkpoint.thread_id, checkpoint.step)

    def head_checkpoint(self, thread_id: str) -> Checkpoint | None:
        with self.db.connection(_READ) as conn:
            row = conn.execute(
                _HEAD_CHECKPOINT,
                (thread_id,),
            ).fetchone()
        return _parse(thread_id, row[0], row[1]) if row else None

    def list_checkpoints(
        self,
        thread_id: str,
        *,
        newest_first: bool = True,
        before_step: int | None = None,
        limit: int | None = None,
    ) -> list[Checkpoint]:
        sql, params = list_checkpoints_query(
            POSTGRES, thread_id, newest_first=newest_first, before_step=before_step, limit=limit
        )
        with self.db.connection(_READ) as conn:
            rows = conn.execute(sql.encode(), params).fetchall()
        return [_parse(thread_id, r[0], r[1]) for r in rows]

    def get_thread(self, thread_id: str) -> ThreadRecord | None:
        with self.db.connection(_READ) as conn:
            row = conn.execute(
                "SELECT body FROM threads WHERE thread_id = %s", (thread_id,)
            ).fetchone()
        return ThreadRecord.model_validate_json(row[0]) if row else None

    def put_thread(self, record: ThreadRecord, *, expected_revision: int | None) -> ThreadRecord:
        stored = record.model_copy(update={"revision": (expected_revision or 0) + 1})
        values = (stored.status, stored.updated_at, stored.revision, stored.model_dump_json())
        with self.db.connection(_WRITE) as conn:
            if expected_revision is None:
                # Create iff absent: the primary key is the condition.
                done = conn.execute(
                    "INSERT INTO threads (thread_id, status, updated_at, revision, body) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (stored.thread_id, *values),
                ).rowcount
            else:
                # Replace iff the stored revision is the one the caller read.
                done = conn.execute(
                    "UPDATE threads SET status = %s, updated_at = %s, revision = %s, body = %s "
                    "WHERE thread_id = %s AND revision = %s",
                    (*values, stored.thread_id, expected_revision),
                ).rowcount
        if done != 1:
            raise RecordConflict(f"thread#{record.thread_id}", self.get_thread(record.thread_id))
        return stored

    def advance_thread(self, record: ThreadRecord) -> bool:
        body = record.model_copy(update={"revision": 1}).model_dump_json()
        with self.db.connection(_WRITE) as conn:
            # Insert, or move forward only: the WHERE keeps a later head; the stored created_at
            # and origin are carried into the new body, the revision counts the writes.
            written = conn.execute(
                "INSERT INTO threads AS t (thread_id, status, updated_at, revision, body) "
                "VALUES (%s, %s, %s, 1, %s) ON CONFLICT (thread_id) DO UPDATE SET "
                "status = EXCLUDED.status, updated_at = EXCLUDED.updated_at, "
                "revision = t.revision + 1, body = (EXCLUDED.body::jsonb || jsonb_build_object("
                "'created_at', t.body::jsonb -> 'created_at', "
                "'origin', coalesce(t.body::jsonb -> 'origin', 'null'::jsonb), "
                "'revision', t.revision + 1))::text "
                "WHERE (t.body::jsonb ->> 'head_step')::bigint "
                "< (EXCLUDED.body::jsonb ->> 'head_step')::bigint",
                (record.thread_id, record.status, record.updated_at, body),
            ).rowcount
        return bool(written == 1)

    def list_threads(self, *, status: str | None = None, limit: int = 1000) -> list[ThreadRecord]:
        sql = "SELECT body FROM threads"
        params: list[Any] = []
        if status is not None:
            sql += " WHERE status = %s"
            params.append(status)
        sql += " ORDER BY updated_at LIMIT %s"
        params.append(limit)
        with self.db.connection(_READ) as conn:
            rows = conn.execute(sql.encode(), params).fetchall()
        return [ThreadRecord.model_validate_json(r[0]) for r in rows]

    def page_threads(
        self,
        *,
        status: str | None = None,
        prefix: str = "",
        newest_first: bool = True,
        limit: int = 50,
        cursor: str | None = None,
    ) -> ThreadPage:
        """One range read in `(updated_at, thread_id)` order (`threads_by_status` serves a
        status; without one, or in byte order, the rows are sorted: fine for thousands)."""
        check_query(status, limit)
        sql, params = page_threads_query(
            POSTGRES,
            status=status,
            prefix=prefix,
            newest_first=newest_first,
            limit=limit,
            start=decode_cursor(cursor),
        )
        with self.db.connection(_READ) as conn:
            rows = conn.execute(sql.encode(), params).fetchall()
        return cut([ThreadRecord.model_validate_json(r[0]) for r in rows], limit)

    def get_record(self, thread_id: str, key: str) -> VersionedRecord | None:
        with self.db.connection(_READ) as conn:
            row = conn.execute(
                _GET_RECORD,
                (thread_id, key),
            ).fetchone()
        if row is None:
            return None
        return VersionedRecord(key=key, value=json.loads(unpack(row[1])), version=row[0])

    def put_record(
        self, thread_id: str, key: str, value: dict[str, Any], *, expected_version: int | None
    ) -> VersionedRecord:
        body = pack(compact_json(value))
        version = (expected_version or 0) + 1
        with self.db.connection(_WRITE) as conn:
            if expected_version is None:
                # Create iff absent: the primary key is the condition.
                done = conn.execute(
                    "INSERT INTO records (thread_id, key, version, body) VALUES (%s, %s, 1, %s) "
                    "ON CONFLICT DO NOTHING",
                    (thread_id, key, body),
                ).rowcount
            else:
                # Compare-and-set on the version the caller read.
                done = conn.execute(
                    "UPDATE records SET version = %s, body = %s "
                    "WHERE thread_id = %s AND key = %s AND version = %s",
                    (version, body, thread_id, key, expected_version),
                ).rowcount
        if done != 1:
            raise RecordConflict(key, self.get_record(thread_id, key))
        return VersionedRecord(key=key, value=value, version=version)

    def get_records(self, thread_id: str, keys: Sequence[str]) -> dict[str, VersionedRecord]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, VersionedRecord] = {}
        with self.db.connection(_READ) as conn:
            for start in range(0, len(wanted), ANY_CHUNK):
                rows = conn.execute(
                    "SELECT key, version, body FROM records WHERE thread_id = %s AND key = ANY(%s)",
                    (thread_id, wanted[start : start + ANY_CHUNK]),
                ).fetchall()
                for key, version, body in rows:
                    found[key] = VersionedRecord(
                        key=key, value=json.loads(unpack(body)), version=version
                    )
        return found

    def complete_task(
        self, thread_id: str, counter_key: str, member_key: str, value: dict[str, Any]
    ) -> tuple[bool, int]:
        with self.db.connection(_WRITE) as conn:
            row = conn.execute(
                _COMPLETE,
                {"t": thread_id, "m": member_key, "c": counter_key, "v": pack(compact_json(value))},
            ).fetchone()
        if row is not None and row[0]:
            return True, int(row[1])
        counter = self.get_record(thread_id, counter_key)
        return False, int(counter.value.get("count", 0)) if counter else 0

    def close(self) -> None:
        self.db.close()


def _parse(thread_id: str, step: int, body: bytes) -> Checkpoint:
    try:
        return Checkpoint.from_stored_json(unpack(body))
    except ValidationError as exc:
        raise CorruptRecord(thread_id, step, str(exc.errors()[0]["msg"])) from exc
    except ValueError as exc:  # a packed body cut short, or not UTF-8
        raise CorruptRecord(thread_id, step, f"the stored body does not unpack: {exc}") from exc
