"""Notifier for the embedded mode: one JSON line per notification in `outbox/notifications.jsonl`
(and a log line), so a newcomer can open the approval request without any mail server."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from durable_graph.backends.local.storage_errors import storage_errors
from durable_graph.ports import Notification

log = logging.getLogger("durable_graph.notify")


class OutboxNotifier:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "notifications.jsonl"

    def notify(self, notification: Notification) -> None:
        line = json.dumps(notification.model_dump(mode="json"), sort_keys=True)
        with storage_errors(f"writing {self.path}"):
            self.folder.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        log.info(
            "notification: %s", notification.summary, extra={"thread_id": notification.thread_id}
        )

    def read_all(self) -> list[Notification]:
        if not self.path.exists():
            return []
        return [
            Notification.model_validate_json(line)
            for line in self.path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
