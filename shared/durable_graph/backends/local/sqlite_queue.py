"""TransitionQueue on SQLite with SQS FIFO semantics: dedup while queued, one message in flight
per group, leases (visibility timeouts) that expire so a killed worker's task comes back."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from durable_graph.backends.local.db import Database
from durable_graph.canonical import compact_json
from durable_graph.clock import Clock, SystemClock, iso
from durable_graph.ports import Delivery, TransitionMessage

MAX_RECEIVES = 5


class SqliteQueue:
    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()

    def send(self, messages: Sequence[TransitionMessage]) -> None:
        if not messages:
            return
        with self.db.write() as conn:
            conn.executemany(
                # OR IGNORE on the UNIQUE dedup id: a message already queued is not queued twice.
                "INSERT OR IGNORE INTO queue (dedup_id, group_id, thread_id, body) "
                "VALUES (?, ?, ?, ?)",
                [(m.dedup_id, m.group_id, m.thread_id, m.model_dump_json()) for m in messages],
            )

    def receive(
        self,
        *,
        max_messages: int = 1,
        visibility_timeout: float = 60.0,
        thread_id: str | None = None,
    ) -> list[Delivery]:
        now = self.clock.now().timestamp()
        out: list[Delivery] = []
        with self.db.read() as conn:  # cheap look before taking the write lock
            if (
                conn.execute("SELECT 1 FROM queue WHERE visible_at <= ? LIMIT 1", (now,)).fetchone()
                is None
            ):
                return out
        with self.db.write() as conn:
            sql = (
                "SELECT id, body, receive_count, group_id FROM queue q WHERE visible_at <= ? "
                "AND NOT EXISTS (SELECT 1 FROM queue b WHERE b.group_id = q.group_id "
                "AND b.receipt IS NOT NULL AND b.visible_at > ?) "
                "AND id = (SELECT MIN(id) FROM queue c WHERE c.group_id = q.group_id)"
            )
            params: list[object] = [now, now]
            if thread_id is not None:
                sql += " AND thread_id = ?"
                params.append(thread_id)
            sql += " ORDER BY id LIMIT ?"
            params.append(max_messages)
            rows = conn.execute(sql, params).fetchall()
            for row_id, body, count, _group in rows:
                receipt = uuid.uuid4().hex
                conn.execute(
                    "UPDATE queue SET receipt = ?, visible_at = ?, receive_count = ? WHERE id = ?",
                    (receipt, now + visibility_timeout, count + 1, row_id),
                )
                out.append(
                    Delivery(
                        message=TransitionMessage.model_validate_json(body),
                        receipt=receipt,
                        receive_count=count + 1,
                    )
                )
        return out

    def ack(self, delivery: Delivery) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM queue WHERE receipt = ?", (delivery.receipt,))

    def release(self, delivery: Delivery, *, delay: float = 0.0) -> None:
        now = self.clock.now().timestamp()
        with self.db.write() as conn:
            conn.execute(
                "UPDATE queue SET visible_at = ?, receipt = NULL WHERE receipt = ?",
                (now + delay, delivery.receipt),
            )

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Move a poison message aside, like an SQS redrive to the DLQ."""
        with self.db.write() as conn:
            conn.execute("DELETE FROM queue WHERE receipt = ?", (delivery.receipt,))
            conn.execute(
                "INSERT INTO dead_letters (dedup_id, body, reason, failed_at) VALUES (?,?,?,?)",
                (
                    delivery.message.dedup_id,
                    compact_json(delivery.message.model_dump(mode="json")),
                    reason,
                    iso(self.clock.now()),
                ),
            )

    def depth(self) -> int:
        with self.db.read() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM queue").fetchone()[0])
