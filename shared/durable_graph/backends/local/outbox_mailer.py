"""Mailer for the embedded mode: each message is a JSON file in the store's outbox.

`<home>/outbox/sent/<idempotency key>.json`, next to the notifications: a newcomer can read the
email the graph sent without a mail server. The folder comes from the backend (the store's
root), never from the working directory. A file is written once (`files.write_once`): sending
again with the same key leaves the first message in place, as a receiver honouring the key
would.

With the store's database (the embedded backend), the message is a row of its `mail` table,
written by the store's next write transaction (`Database.defer`): inside `ctx.step`, the one
that records the send as the step's result, so the row and the record commit together (one
relaxed commit, no fsync of its own: `db.py`), and the step's durable commit after them syncs
both, in WAL order. The ledger never says "sent" about a message that is not stored, and a
process killed between the send and that commit stored neither: the next delivery sends it,
once. The file is a copy written by a background thread once the row committed
(`file_copies.py`), not fsynced. Without a database (the PostgreSQL backend keeps its mail in a
folder of the home) the file is the message, written and fsynced by `send`.

With encryption at rest on (`encryption.py`), a node's mailer is `for_thread(...)`: the message
is stored (row and file alike) as `{"thread_id", "idempotency_key", "$sealed"}`, the message
sealed with the thread's data key (associated data `dg:mail:<key>`), so erasing the thread by
key destruction makes its sent mail unreadable too; `read_all(keys)` opens it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from durable_graph.backends.local.db import Database
from durable_graph.backends.local.file_copies import COPIES
from durable_graph.backends.local.row_bodies import decode_body, encode_body
from durable_graph.backends.local.storage_errors import storage_errors
from durable_graph.encryption import SEALED, ThreadCipher
from durable_graph.errors import DataKeyUnavailable
from durable_graph.files import replace_file, write_once
from durable_graph.keys import Keyring
from durable_graph.mail import EmailMessage, check_key, erased_message

ERASED = "$erased"  # a message erased (`forget_mail`): to whom it went, and who erased it

__all__ = ["OutboxMailer"]

log = logging.getLogger("durable_graph.mail")


class OutboxMailer:
    """Implements `durable_graph.mail.Mailer` on a folder (and the store's `mail` table)."""

    def __init__(
        self,
        folder: Path,
        db: Database | None = None,
        *,
        sealing: tuple[str, ThreadCipher] | None = None,
    ) -> None:
        self.folder = folder
        self.db = db
        self.sealing = sealing  # (thread id, its cipher): what this view sends is sealed

    def for_thread(self, thread_id: str, cipher: ThreadCipher) -> OutboxMailer:
        """The mailer of one thread of an encrypted store: it stores what it sends sealed."""
        return OutboxMailer(self.folder, self.db, sealing=(thread_id, cipher))

    def send(self, message: EmailMessage, *, idempotency_key: str) -> str:
        path = self.folder / f"{check_key(idempotency_key)}.json"
        document: dict[str, Any] = message.model_dump(mode="json")
        if self.sealing is not None:
            thread_id, cipher = self.sealing
            sealed = cipher.seal_text(json.dumps(document).encode(), _aad(idempotency_key))
            document = {"thread_id": thread_id, SEALED: sealed}
        document["idempotency_key"] = idempotency_key
        if self.db is None:
            with storage_errors(f"writing {path}"):
                write_once(path, _file_bytes(document))
            return idempotency_key
        # The row is compact JSON (its sealed value packed: `row_bodies.py`), the file copy
        # indented for a reader; the first message of a key stays.
        self.db.defer(
            "INSERT OR IGNORE INTO mail (key, body) VALUES (?, ?)",
            (
                idempotency_key,
                encode_body(json.dumps(document, ensure_ascii=False, separators=(",", ":"))),
            ),
            lambda: COPIES.put(lambda: self._mirror(path, _file_bytes(document))),
        )
        return idempotency_key

    def close(self) -> None:
        """Wait for the file copies handed to the background writer (`file_copies.py`)."""
        COPIES.drain()

    @staticmethod
    def _mirror(path: Path, data: bytes) -> None:
        """The file copy of a committed row; a full disk only skips it (the row is the mail)."""
        try:
            write_once(path, data, sync=False)
        except OSError as exc:
            log.warning("cannot write %s: %s", path, exc)

    def forget_mail(
        self, keys: Collection[str], erased: Mapping[str, Any], cipher: Any = None
    ) -> int:
        """`mail.MailLog`: the rows first (one transaction), then their file copies, each
        rewritten whole (`{"idempotency_key", "to", "$erased"}`, `thread_id` when it had one)."""
        wanted = sorted(set(keys))
        if not wanted:
            return 0
        found: dict[str, dict[str, Any]] = {}
        if self.db is not None:
            self.db.write_deferred()  # a message sent and not yet written is sent
            with self.db.write() as conn:
                marks = ",".join("?" * len(wanted))
                rows = conn.execute(
                    f"SELECT key, body FROM mail WHERE key IN ({marks})", wanted
                ).fetchall()
                for key, body in rows:
                    after = _forgotten(key, json.loads(decode_body(body)), erased, cipher)
                    if after is not None:
                        found[key] = after
                        conn.execute(
                            "UPDATE mail SET body = ? WHERE key = ?",
                            (encode_body(json.dumps(after, separators=(",", ":"))), key),
                        )
            COPIES.drain()  # every copy handed over is written before it is rewritten
        for key in wanted:
            path = self.folder / f"{key}.json"
            if key not in found and self.db is None and path.exists():
                document = json.loads(path.read_text(encoding="utf-8"))
                after = _forgotten(key, document, erased, cipher)
                if after is not None:
                    found[key] = after
            if key in found and (self.db is None or path.exists()):
                with storage_errors(f"writing {path}"):
                    replace_file(path, _file_bytes(found[key]))
        return len(found)

    def read_all(self, keys: Keyring | None = None) -> dict[str, EmailMessage]:
        """The messages sent, by idempotency key (sealed ones opened with `keys`; raises
        `DataKeyUnavailable` for one whose thread's key is gone)."""
        if self.db is not None:
            self.db.write_deferred()  # a message sent and not yet written is sent
            with self.db.read() as conn:
                rows = conn.execute("SELECT key, body FROM mail ORDER BY key").fetchall()
            documents = [(key, json.loads(decode_body(body))) for key, body in rows]
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
            if SEALED in document:
                thread_id = str(document["thread_id"])
                if keys is None:
                    raise DataKeyUnavailable(thread_id, "this reader was given no data keys")
                cipher = keys.cipher(thread_id)
                opened = json.loads(cipher.open_text(str(document[SEALED]), _aad(key)))
                document = {**opened, **({ERASED: document[ERASED]} if ERASED in document else {})}
            if ERASED in document:
                found[key] = erased_message(document.get("to", ()), document[ERASED])
                continue
            found[key] = EmailMessage.model_validate(document)
        return found


def _forgotten(
    key: str, document: dict[str, Any], erased: Mapping[str, Any], cipher: ThreadCipher | None
) -> dict[str, Any] | None:
    """The stored message once erased; None when there is nothing left to erase (erased
    already, or sealed with a key that is gone: unreadable as it is)."""
    if ERASED in document:
        return None
    opened = document
    if SEALED in document:
        if cipher is None:
            return None
        opened = json.loads(cipher.open_text(str(document[SEALED]), _aad(key)))
    to = list(opened.get("to", ()))
    after: dict[str, Any] = {"idempotency_key": key}
    if "thread_id" in document:
        after["thread_id"] = document["thread_id"]
    if cipher is not None and SEALED in document:  # the recipients stay sealed
        after[SEALED] = cipher.seal_text(json.dumps({"to": to}).encode(), _aad(key))
    else:
        after["to"] = to
    after[ERASED] = dict(erased)
    return after


def _file_bytes(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


def _aad(idempotency_key: str) -> bytes:
    return f"dg:mail:{idempotency_key}".encode()
