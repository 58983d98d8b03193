"""What an erasure scrubs besides the rows of the chain (`erasure.py`): copies of the erased
values in the small records beside it, which no hash covers, so they are simply rewritten
(each idempotently: an interrupted erasure run again scrubs what is left).

- fan-out result rows (`done#<step>#<task>`): each task's writes and io until the last one
  merges them into the next step, and the chunks holding big ones; an interrupted task's
  payload and a failed one's error message;
- `ctx.step` result records (`fx#<task>#<name>`): the result an io response repeats;
- the thread head (`threads` row, DynamoDB `thread#` item): its head step's interrupt and error;
- the notifications a suspension left in the store's outbox (`NotificationLog`: the embedded
  `outbox` table and its `notifications.jsonl`, PostgreSQL's `notifications`): the interrupt
  payload. What a notifier already delivered (SNS, mail) is out of reach;
- the mail the thread's tasks sent, as the mailer keeps it (`mail.MailLog`): its subject and
  body. What the mail service delivered is out of reach.
"""

from __future__ import annotations

from collections.abc import Collection
from contextlib import suppress

from durable_graph.backend import Backend
from durable_graph.canonical import compact_json
from durable_graph.checkpoint import Checkpoint, ThreadRecord
from durable_graph.encryption import SEALED, ThreadCipher
from durable_graph.erasure_parts import ERASED_TEXT, head_after, stored_marker
from durable_graph.erasure_record import ErasureRecord
from durable_graph.errors import RecordConflict
from durable_graph.fanin import DONE_SEALED, result_chunks, thread_payloads
from durable_graph.mail import MailLog, task_key
from durable_graph.part_chunks import chunked_part
from durable_graph.payloads import is_ref, loaded
from durable_graph.ports.notifier import NotificationLog
from durable_graph.sealed_records import open_with, seal_with


def scrub_done_rows(
    backend: Backend,
    thread_id: str,
    keys: list[str],
    cipher: ThreadCipher | None,
    wanted: set[str] | None,
    *,
    parts: Collection[str],
) -> None:
    """Fan-out result rows (`done#`, unhashed) keep each task's result as it returned it:
    drop the erased fields' writes (all writes and io when every field is erased; the io, the
    interrupt payload, the error message when that part is in `parts`). Writes or io kept whole
    in a chunk (`fanin.stored_result`) are read back, and their chunk deleted once the row no
    longer names it (writes that keep other fields go to a new chunk); a chunk sealed with a
    destroyed key is unreadable already. A `Command`'s `goto` stays: a retried superstep that
    reuses the task's result routes by it."""
    store = backend.checkpoints
    for key, found in store.get_records(thread_id, keys).items():
        value = dict(found.value)
        sealed = SEALED in value
        if sealed and cipher is None:
            # Its key is gone: the sealed parts go whole.
            value = {k: v for k, v in value.items() if k != SEALED}
            value.update({"writes": {}, "io": [], "interrupt": None, "error": None})
            sealed = False
        elif sealed and cipher is not None:
            value = open_with(value, cipher, key)
        named = result_chunks(value)
        writes = value.get("writes")
        if wanted is None:
            value["writes"] = {}
        elif is_ref(writes):
            whole = loaded(writes, backend.payloads)
            kept = {k: v for k, v in whole.items() if k not in wanted}
            if kept != whole:
                payloads = thread_payloads(backend, thread_id)
                most = backend.max_value_bytes
                value["writes"] = chunked_part(kept, payloads, most, f"{key} writes")
        elif isinstance(writes, dict):
            value["writes"] = {k: v for k, v in writes.items() if k not in wanted}
        if wanted is None or "io" in parts:
            value["io"] = []
        if "interrupts" in parts and value.get("interrupt") is not None:
            value["interrupt"] = None
        error = value.get("error")
        if "errors" in parts and isinstance(error, dict) and error.get("message") != ERASED_TEXT:
            value["error"] = {**error, "message": ERASED_TEXT}
        gone = [ref for ref in named if ref not in result_chunks(value)]
        if sealed and cipher is not None:
            value = seal_with(value, DONE_SEALED, cipher, key)
            if open_with(found.value, cipher, key) == open_with(value, cipher, key):
                continue  # nothing of the erased fields in it
        if compact_json(value) != compact_json(found.value):
            store.put_record(thread_id, key, value, expected_version=found.version)
        for ref in gone:  # after the row: a rerun never finds a row naming a deleted chunk
            backend.payloads.delete(ref)


def scrub_effects(backend: Backend, thread_id: str, keys: list[str]) -> None:
    """A `ctx.step` result is also kept in its effect record (`fx#<task>#<name>`, unhashed):
    where its io response is erased, the result goes too (sealed or not)."""
    store = backend.checkpoints
    for key, found in store.get_records(thread_id, keys).items():
        value = {k: v for k, v in found.value.items() if k != SEALED}
        value["result"] = None
        if value != found.value:
            with suppress(RecordConflict):  # a concurrent scrub wrote the same
                store.put_record(thread_id, key, value, expected_version=found.version)


def scrub_head(backend: Backend, thread_id: str, rows: list[Checkpoint]) -> None:
    """The thread head copies its head step's interrupt and error (`threads` row, DynamoDB
    `thread#` item): where that step's are erased, so are the copies."""
    store = backend.checkpoints.inner
    for _ in range(3):
        head: ThreadRecord | None = store.get_thread(thread_id)
        row = next((r for r in rows if head is not None and r.step == head.head_step), None)
        after = head_after(head, row) if head is not None and row is not None else None
        if head is None or after is None:
            return
        try:
            store.put_thread(after, expected_revision=head.revision)
            return
        except RecordConflict:
            continue


def scrub_notifications(backend: Backend, thread_id: str, parts: dict[str, list[str]]) -> None:
    """The interrupt payloads erased at these steps, gone from the notifications kept too."""
    steps = {int(s): stored_marker(int(s)) for s, names in parts.items() if "interrupt" in names}
    notifier = backend.notifier
    if steps and isinstance(notifier, NotificationLog):
        notifier.forget_payloads(thread_id, steps)


def scrub_mail(
    backend: Backend,
    thread_id: str,
    tasks: list[str],
    record: ErasureRecord,
    cipher: ThreadCipher | None,
) -> int:
    """The mail the thread's tasks sent (under `ctx.idempotency_key`), as the mailer keeps it
    (`mail.MailLog`: the embedded `mail` rows and `outbox/sent` files, the memory dict): the
    subject and body go, to whom it went stays, with who erased it. A node builds its mail
    from the values, so any erased value takes the thread's mail with it."""
    mailer = backend.mailer
    if not tasks or not isinstance(mailer, MailLog):
        return 0
    erased = {"by": f"{record.actor.kind}:{record.actor.id}", "at": record.erased_at,
              "erasure": record.seq}  # fmt: skip
    return mailer.forget_mail([task_key(thread_id, task) for task in tasks], erased, cipher)


__all__ = ["scrub_done_rows", "scrub_effects", "scrub_head", "scrub_mail", "scrub_notifications"]
