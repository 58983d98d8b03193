"""Mailer for the embedded mode: each message is a JSON file in the store's outbox.

`<home>/outbox/sent/<idempotency key>.json`, next to the notifications: a newcomer can read the
email the graph sent without a mail server. The folder comes from the backend (the store's
root), never from the working directory. A file is written once (`files.write_once`): sending
again with the same key leaves the first message in place, as a receiver honouring the key
would.

With the store's database (the embedded backend), the message is a row of its `mail` table,
written by a relaxed commit (no fsync of its own, `db.py`), and the file is a copy written once
that commit is done, not fsynced. The row is durable no later than the step that records the
send (`ctx.step`'s result is committed after it, and the step's durable commit syncs both, in
WAL order), so the ledger never says "sent" about a message a power cut could lose, and the
send costs no fsync. Without a database (the PostgreSQL backend keeps its mail in a folder of
the home) the file is the message and is fsynced.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from durable_graph.backends.local.db import Database
from durable_graph.backends.local.storage_errors import storage_errors
from durable_graph.files import write_once
from durable_graph.mail import EmailMessage, check_key

__all__ = ["OutboxMailer"]

log = logging.getLogger("durable_graph.mail")


class OutboxMailer:
    """Implements `durable_graph.mail.Mailer` on a folder (and the store's `mail` table)."""

    def __init__(self, folder: Path, db: Database | None = None) -> None:
        self.folder = folder
        self.db = db

    def send(self, message: EmailMessage, *, idempotency_key: str) -> str:
        path = self.folder / f"{check_key(idempotency_key)}.json"
        document = {**message.model_dump(mode="json"), "idempotency_key": idempotency_key}
        data = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()
        if self.db is None:
            with storage_errors(f"writing {path}"):
                write_once(path, data)
            return idempotency_key
        with self.db.write(durable=False) as conn:  # the first message of a key stays
            created = conn.execute(
                "INSERT OR IGNORE INTO mail (key, body) VALUES (?, ?)",
                (idempotency_key, data.decode()),
            ).rowcount
            if created:
                self.db.after_commit(lambda: self._mirror(path, data))
        return idempotency_key

    @staticmethod
    def _mirror(path: Path, data: bytes) -> None:
        """The file copy of a committed row; a full disk only skips it (the row is the mail)."""
        try:
            write_once(path, data, sync=False)
        except OSError as exc:
            log.warning("cannot write %s: %s", path, exc)

    def read_all(self) -> dict[str, EmailMessage]:
        """The messages sent, by idempotency key."""
        if self.db is not None:
            with self.db.read() as conn:
                rows = conn.execute("SELECT key, body FROM mail ORDER BY key").fetchall()
            documents = [(key, json.loads(body)) for key, body in rows]
        elif self.folder.is_dir():
            documents = [
                (path.stem, json.loads(path.read_text(encoding="utf-8")))
                for path in sorted(self.folder.glob("*.json"))
            ]
        else:
            documents = []
        found: dict[str, EmailMessage] = {}
        for stem, document in documents:
            key = document.pop("idempotency_key", stem)
            found[key] = EmailMessage.model_validate(document)
        return found
