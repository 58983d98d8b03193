"""Notifier for the embedded mode: an outbox table in the store's database, mirrored to
`outbox/notifications.jsonl` (and a log line), so a newcomer can open the approval request
without any mail server.

The row is the notification: it is written in the transaction of the step that suspended the
thread (`Backend.atomic`), so it exists iff the step committed, and costs no fsync of its own
(it used to be a line appended and fsynced after the commit: a second fsync per suspension).
The JSON-lines file is a convenience copy appended once the transaction commits, by the outbox's
background writer (`file_copies.py`, in commit order), not fsynced: a crash right after the
commit can leave a line out of the file, never out of the table (`read_all` reads the table).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from durable_graph.backends.local.db import Database
from durable_graph.backends.local.file_copies import COPIES
from durable_graph.canonical import compact_json
from durable_graph.ports.notifier import Notification

log = logging.getLogger("durable_graph.notify")
_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


class OutboxNotifier:
    """Implements `durable_graph.ports.notifier.Notifier` and `NotificationLog`."""

    def __init__(self, db: Database, folder: Path) -> None:
        self.db = db
        self.folder = folder
        self.path = folder / "notifications.jsonl"

    def notify(self, notification: Notification) -> None:
        body = compact_json(notification.model_dump(mode="json"))
        with self.db.write() as conn:  # nested in the step's transaction when it has one
            conn.execute(
                "INSERT INTO outbox (thread_id, step, body) VALUES (?, ?, ?)",
                (notification.thread_id, notification.step, body),
            )
        self.db.after_commit(lambda: self._committed(body, notification))

    def close(self) -> None:
        """Wait for the file copies handed to the background writer."""
        COPIES.drain()

    def _committed(self, line: str, notification: Notification) -> None:
        log.info(
            "notification: %s", notification.summary, extra={"thread_id": notification.thread_id}
        )
        COPIES.put(lambda: self._mirror(line))

    def _mirror(self, line: str) -> None:
        """Append the committed notification to the file copy; a full disk only skips it.
        One `O_APPEND` write of the line's bytes (a Python file object cost as much again, in
        its buffer set-up and a terminal check)."""
        data = f"{line}\n".encode()
        try:
            try:
                fd = os.open(self.path, _APPEND, 0o666)
            except FileNotFoundError:  # the first notification: make the folder
                self.folder.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, _APPEND, 0o666)
            try:
                while data:
                    data = data[os.write(fd, data) :]
            finally:
                os.close(fd)
        except OSError as exc:  # the row is committed: the copy is best effort
            log.warning("cannot append to %s: %s", self.path, exc)

    def read_all(self, thread_id: str | None = None) -> list[Notification]:
        """Every committed notification (of `thread_id`, when given), oldest first."""
        sql = "SELECT body FROM outbox"
        params: tuple[str, ...] = ()
        if thread_id is not None:
            sql += " WHERE thread_id = ?"
            params = (thread_id,)
        with self.db.read() as conn:
            rows = conn.execute(sql + " ORDER BY id", params).fetchall()
        return [Notification.model_validate_json(row[0]) for row in rows]

    def forget_payloads(self, thread_id: str, payloads: Mapping[int, Any]) -> None:
        """The rows first (in one transaction), then the file copy, rewritten whole and
        replaced atomically: a notification another process appends to the file meanwhile
        may be missing from the copy (never from the table, which `read_all` reads)."""
        with self.db.write() as conn:
            rows = conn.execute(
                "SELECT id, step, body FROM outbox WHERE thread_id = ?", (thread_id,)
            ).fetchall()
            for row_id, step, body in rows:
                if step in payloads:
                    conn.execute(
                        "UPDATE outbox SET body = ? WHERE id = ?",
                        (_forgotten(body, payloads[step]), row_id),
                    )
        COPIES.drain()  # every line handed over is in the file before it is rewritten
        if not self.path.exists():
            return
        lines = self.path.read_text(encoding="utf-8").splitlines()
        kept = []
        for line in lines:
            doc = json.loads(line) if line.strip() else None
            step = doc.get("step") if isinstance(doc, dict) else None
            mine = isinstance(doc, dict) and doc.get("thread_id") == thread_id
            if mine and isinstance(step, int) and step in payloads:
                line = _forgotten(line, payloads[step])
            kept.append(line)
        if kept != lines:
            spare = self.path.with_suffix(".jsonl.tmp")
            spare.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
            os.replace(spare, self.path)


def _forgotten(body: str, payload: Any) -> str:
    doc = json.loads(body)
    doc["payload"] = payload
    return compact_json(doc)
