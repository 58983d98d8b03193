"""Mailer for the embedded mode: each message is a JSON file in the store's outbox.

`<home>/outbox/sent/<idempotency key>.json`, next to the notifications: a newcomer can read the
email the graph sent without a mail server. The folder comes from the backend (the store's
root), never from the working directory. A file is written once (`files.write_once`): sending
again with the same key leaves the first message in place, as a receiver honouring the key
would.
"""

from __future__ import annotations

import json
from pathlib import Path

from durable_graph.backends.local.storage_errors import storage_errors
from durable_graph.files import write_once
from durable_graph.mail import EmailMessage, check_key

__all__ = ["OutboxMailer"]


class OutboxMailer:
    """Implements `durable_graph.mail.Mailer` on a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, message: EmailMessage, *, idempotency_key: str) -> str:
        path = self.folder / f"{check_key(idempotency_key)}.json"
        document = {**message.model_dump(mode="json"), "idempotency_key": idempotency_key}
        data = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()
        with storage_errors(f"writing {path}"):
            write_once(path, data)
        return idempotency_key

    def read_all(self) -> dict[str, EmailMessage]:
        """The messages in the outbox, by idempotency key."""
        if not self.folder.is_dir():
            return {}
        found: dict[str, EmailMessage] = {}
        for path in sorted(self.folder.glob("*.json")):
            document = json.loads(path.read_text(encoding="utf-8"))
            key = document.pop("idempotency_key", path.stem)
            found[key] = EmailMessage.model_validate(document)
        return found
