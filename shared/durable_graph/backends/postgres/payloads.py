"""PayloadStore on PostgreSQL: one row per distinct content, keyed by its sha256.

Written once (on conflict only the stamp moves: identical bytes are already there), and
checked against the digest on every read, like the folder and S3 stores. `stored_at` is the
store's clock at the last put (`ports.payload_store`, schema migration 3). A deployment that
wants large payloads out of the database passes an S3 store instead (`postgres_backend(...,
payloads=...)`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

from durable_graph.backends.postgres.db import Database
from durable_graph.checkpoint import PayloadRef
from durable_graph.clock import Clock, SystemClock
from durable_graph.errors import PayloadCorrupted
from durable_graph.ports.payload_store import IdleDelete, StoredObject

URI_PREFIX = "postgres:payloads/"


class PostgresPayloadStore:
    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()

    def put(self, data: bytes, content_type: str = "application/octet-stream") -> PayloadRef:
        digest = hashlib.sha256(data).hexdigest()
        stamp = self.clock.now().timestamp()
        with self.db.connection("writing a payload") as conn:
            conn.execute(
                "INSERT INTO payloads (sha256, content_type, size, data, stored_at) "
                "VALUES (%s, %s, %s, %s, %s) "
                # Content-addressed: the row holds these bytes already; only its stamp moves
                # (the unchanged bytea is not copied).
                "ON CONFLICT (sha256) DO UPDATE SET stored_at = "
                "GREATEST(payloads.stored_at, EXCLUDED.stored_at)",
                (digest, content_type, len(data), data, stamp),
            )
        return PayloadRef(
            uri=URI_PREFIX + digest, sha256=digest, size=len(data), content_type=content_type
        )

    def get(self, ref: PayloadRef) -> bytes:
        with self.db.connection("reading a payload") as conn:
            row = conn.execute(
                "SELECT data FROM payloads WHERE sha256 = %s", (ref.sha256,)
            ).fetchone()
        if row is None:
            raise PayloadCorrupted(f"payload {ref.sha256} is missing from the store")
        data = bytes(row[0])
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise PayloadCorrupted(f"payload {ref.sha256} does not match its digest")
        return data

    def get_many(self, refs: Sequence[PayloadRef]) -> list[bytes]:
        """Every payload under `refs` in one query (a cold read's segments), in order, each
        checked against its digest."""
        if not refs:
            return []
        wanted = list(dict.fromkeys(ref.sha256 for ref in refs))
        with self.db.connection("reading payloads") as conn:
            rows = conn.execute(
                "SELECT sha256, data FROM payloads WHERE sha256 = ANY(%s)", (wanted,)
            ).fetchall()
        found = {str(sha): bytes(data) for sha, data in rows}
        out = []
        for ref in refs:
            data = found.get(ref.sha256)
            if data is None:
                raise PayloadCorrupted(f"payload {ref.sha256} is missing from the store")
            if hashlib.sha256(data).hexdigest() != ref.sha256:
                raise PayloadCorrupted(f"payload {ref.sha256} does not match its digest")
            out.append(data)
        return out

    def delete(self, ref: PayloadRef) -> bool:
        with self.db.connection("deleting a payload") as conn:
            deleted = conn.execute("DELETE FROM payloads WHERE sha256 = %s", (ref.sha256,)).rowcount
        return bool(deleted)

    def delete_if_idle(self, ref: PayloadRef, since: datetime) -> IdleDelete:
        """One conditional DELETE: a concurrent put's upsert either moved the stamp first (the
        row is kept) or finds the row gone and inserts it again."""
        with self.db.connection("deleting a payload") as conn:
            deleted = conn.execute(
                "DELETE FROM payloads WHERE sha256 = %s AND stored_at < %s",
                (ref.sha256, since.timestamp()),
            ).rowcount
            if deleted:
                return "deleted"
            there = conn.execute(
                "SELECT 1 FROM payloads WHERE sha256 = %s", (ref.sha256,)
            ).fetchone()
        return "in_use" if there is not None else "absent"

    def list_objects(self, after: str = "", limit: int = 1000) -> list[StoredObject]:
        """One page in key order (the primary key's index: no sort, no bytes read)."""
        with self.db.connection("listing payloads") as conn:
            rows = conn.execute(
                "SELECT sha256, size, stored_at FROM payloads WHERE sha256 > %s "
                "ORDER BY sha256 LIMIT %s",
                (after, limit),
            ).fetchall()
        return [
            StoredObject(str(sha), int(size), datetime.fromtimestamp(float(stamp or 0), UTC))
            for sha, size, stamp in rows
        ]

    def delete_idle(
        self, digests: Sequence[str], since: datetime, *, dry_run: bool = False
    ) -> list[str]:
        """One conditional DELETE for the batch (see `delete_if_idle`)."""
        if not digests:
            return []
        verb = "SELECT sha256 FROM payloads" if dry_run else "DELETE FROM payloads"
        returning = "" if dry_run else " RETURNING sha256"
        with self.db.connection("deleting payloads") as conn:
            rows = conn.execute(
                f"{verb} WHERE sha256 = ANY(%s) AND stored_at < %s{returning}",
                (list(digests), since.timestamp()),
            ).fetchall()
        return sorted(str(row[0]) for row in rows)
