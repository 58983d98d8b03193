"""Notifier for the PostgreSQL backend: one `notifications` row per notification (and a log
line), where any host can read what was announced; inside a unit of work the row commits with
the step that caused it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from durable_graph.backends.postgres.db import Database
from durable_graph.clock import Clock, SystemClock, iso
from durable_graph.ports.notifier import Notification

log = logging.getLogger("durable_graph.notify")


class PostgresOutbox:
    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()

    def notify(self, notification: Notification) -> None:
        with self.db.connection("writing a notification") as conn:
            conn.execute(
                "INSERT INTO notifications (thread_id, kind, body, created_at) "
                "VALUES (%s, %s, %s, %s)",
                (
                    notification.thread_id,
                    notification.kind,
                    notification.model_dump_json(),
                    iso(self.clock.now()),
                ),
            )
        log.info(
            "notification: %s", notification.summary, extra={"thread_id": notification.thread_id}
        )

    def read_all(self, thread_id: str | None = None) -> list[Notification]:
        """Every committed notification (of `thread_id`, when given), oldest first."""
        with self.db.connection("reading notifications") as conn:
            if thread_id is None:
                rows = conn.execute("SELECT body FROM notifications ORDER BY id").fetchall()
            else:
                rows = conn.execute(
                    "SELECT body FROM notifications WHERE thread_id = %s ORDER BY id",
                    (thread_id,),
                ).fetchall()
        return [Notification.model_validate_json(r[0]) for r in rows]

    def forget_payloads(self, thread_id: str, payloads: Mapping[int, Any]) -> None:
        with self.db.connection("erasing notification payloads") as conn:
            rows = conn.execute(
                "SELECT id, body FROM notifications WHERE thread_id = %s", (thread_id,)
            ).fetchall()
            for row_id, body in rows:
                note = Notification.model_validate_json(body)
                if note.step in payloads:
                    forgotten = note.model_copy(update={"payload": payloads[note.step]})
                    conn.execute(
                        "UPDATE notifications SET body = %s WHERE id = %s",
                        (forgotten.model_dump_json(), row_id),
                    )
