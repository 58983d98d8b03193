"""What follows a step's commit: the successor messages, the thread record, the head
signature and the suspension notification (DESIGN.md §3).

The conditional append of a step is the commit point; everything here comes after it and is
idempotent, so a crash anywhere in it is repaired by doing it all again: a redelivered message
that finds its step committed calls `resend_if_head`. Successor messages of a step with one
task carry that step's state when it is small (`CARRY_LIMIT_BYTES`), so the next worker need
not read it back; `carried_base` is the one reader of what `messages_for` writes there. With
encryption at rest on (`encryption.py`), that state travels sealed with the thread's data key
(a queue is storage too: SQS keeps a message for days, a database queue leaves its rows in
the write-ahead log).
"""

from __future__ import annotations

import json
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from durable_graph.backend import Backend, LinkGrant
from durable_graph.canonical import compact_json, json_size_within
from durable_graph.checkpoint import Checkpoint, PayloadRef, Status
from durable_graph.clock import Clock
from durable_graph.encryption import SealBroken, is_sealed_io
from durable_graph.errors import DurableGraphError, PermanentTaskError, RecordConflict
from durable_graph.keys import Keyring
from durable_graph.ports.commit_writes import CommitWrites, RecordWrite
from durable_graph.ports.notifier import Notification
from durable_graph.ports.transition_queue import TransitionMessage
from durable_graph.ports.worked_queues import is_worked_here
from durable_graph.sealed_fields import open_resume, open_task
from durable_graph.sealing import Base
from durable_graph.signing import sign_if_settled, signature_write
from durable_graph.threads import head_record, moves_head, sync_thread

CARRY_LIMIT_BYTES = 48 * 1024
_NO_GRANT = LinkGrant()  # a step's grant when it carries no links (frozen, never changed)


def messages_for(
    checkpoint: Checkpoint, *, keys: Keyring | None, carry: bool = True
) -> list[TransitionMessage]:
    """One message per next task of `checkpoint`. Only a step with a single task (format 2,
    state within `CARRY_LIMIT_BYTES`) carries its state: the tasks of a parallel superstep
    meet in the store anyway (fanin.py); and none when not `carry` (a queue worked by this
    process: `ports.worked_queues`). `keys`: the store's data keys (encryption on: the
    carried state is sealed with the thread's), None when encryption is off."""
    parallel = len(checkpoint.next)
    carried: dict[str, Any] | None = None
    if (
        carry
        and parallel == 1
        and checkpoint.format >= 2
        and json_size_within(checkpoint.values, CARRY_LIMIT_BYTES)
    ):
        carried = {
            "values": checkpoint.values,
            "hash": checkpoint.hash,
            "digests": checkpoint.digests,
            "anchors": checkpoint.anchors,
            "anchor": checkpoint.anchor,
            "chunks": {k: ref.model_dump(mode="json") for k, ref in checkpoint.chunks.items()},
        }
    messages = []
    for task in checkpoint.next:
        one = dict(carried) if carried is not None else None
        if one is not None and checkpoint.resume.get(task.id):
            one["resume"] = checkpoint.resume[task.id]
        if one is not None and keys is not None:
            cipher = keys.ensure(checkpoint.thread_id)
            one = {"sealed": cipher.seal_text(compact_json(one).encode(), _aad(checkpoint))}
        messages.append(
            TransitionMessage(
                thread_id=checkpoint.thread_id,
                step=checkpoint.step,
                task=task,
                graph=checkpoint.graph,
                parallel=parallel,
                carried=one,
            )
        )
    return messages


def _aad(at: Checkpoint | TransitionMessage) -> bytes:
    return f"dg:carried:{at.thread_id}:{at.step}".encode()


def carried_base(message: TransitionMessage, *, keys: Keyring | None) -> Base | None:
    """The step `message` runs from, as `messages_for` carried it (None: it carried none, or
    carried it sealed and this process cannot open it: the caller reads the store)."""
    carried = message.carried
    if carried is None or message.parallel != 1:
        return None
    if "sealed" in carried:
        if keys is None:
            return None
        try:
            opened = keys.cipher(message.thread_id).open_text(carried["sealed"], _aad(message))
        except (SealBroken, DurableGraphError):
            return None
        carried = json.loads(opened)
    resume = carried.get("resume", [])
    if keys is not None and resume:
        try:  # the record's resume values, sealed in it (`sealed_fields.py`)
            resume = open_resume(resume, keys.cipher(message.thread_id))
        except (SealBroken, DurableGraphError):
            return None
    return Base(
        thread_id=message.thread_id,
        step=message.step,
        hash=carried["hash"],
        values=carried["values"],
        next=[message.task],
        resume={message.task.id: resume},
        digests=carried["digests"],
        anchors=carried["anchors"],
        anchor=int(carried.get("anchor", 0)),
        chunks={k: PayloadRef.model_validate(v) for k, v in carried.get("chunks", {}).items()},
    )


def opened_message(message: TransitionMessage, keys: Keyring | None) -> TransitionMessage:
    """`message` with its task's argument opened (sealed in the record it comes from, and so
    in the queue, when encryption is on: `sealed_fields.py`). Raises `PermanentTaskError`
    when it cannot be opened here (no retry brings a destroyed key back)."""
    if keys is None or not is_sealed_io(message.task.arg):
        return message
    try:
        task = open_task(message.task, keys.cipher(message.thread_id))
    except (SealBroken, DurableGraphError) as exc:
        raise PermanentTaskError(f"the argument of task {message.task.id!r}: {exc}") from exc
    return message.model_copy(update={"task": task})


@dataclass(frozen=True)
class Prepared:
    """A commit's companions (`FollowUps.prepare`) and the links its notification carries."""

    writes: CommitWrites
    links: dict[str, str]


class FollowUps:
    """The follow-ups of the commits made on one backend."""

    def __init__(self, backend: Backend, clock: Clock) -> None:
        self.backend = backend
        self.clock = clock

    def prepare(
        self,
        checkpoint: Checkpoint,
        *,
        previous_status: Status | None,
        signature: RecordWrite | None = None,
    ) -> Prepared:
        """What the commit of `checkpoint` writes with it (`RecordStore.append_checkpoint`):
        the thread head when the status changes (`moves_head`), the head signature when the thread
        suspends, completes or fails (signed here, before the commit, unless `signature` was
        made beforehand with others: `signing.batch_signatures`), and the records of the
        approval links a suspension's notification will carry."""
        moved = moves_head(checkpoint.status, previous_status)
        head = head_record(checkpoint, self.clock) if moved else None
        if signature is None:
            signature = signature_write(self.backend.signer, checkpoint, self.clock)
        grant = self._grant(checkpoint)
        records = (*((signature,) if signature is not None else ()), *grant.records)
        return Prepared(CommitWrites(head=head, records=records), grant.links)

    def after_commit(
        self,
        checkpoint: Checkpoint,
        *,
        previous_status: Status | None,
        prepared: Prepared | None = None,
    ) -> None:
        """Everything after the commit point is idempotent: redelivery repeats it safely.
        `prepared`: what the commit already wrote (`prepare`); None writes it all here."""
        if checkpoint.status == "running":
            keys = self.backend.checkpoints.keys
            queue = self.backend.queue
            carry = not is_worked_here(queue) or queue.carries_state()
            queue.send(messages_for(checkpoint, keys=keys, carry=carry))
        if prepared is None:
            if moves_head(checkpoint.status, previous_status):
                sync_thread(self.backend.checkpoints, checkpoint, self.clock)
            sign_if_settled(self.backend.checkpoints, self.backend.signer, checkpoint, self.clock)
            grant = self._grant(checkpoint)
            for record in grant.records:
                with suppress(RecordConflict):
                    self.backend.checkpoints.put_record(
                        checkpoint.thread_id, record.key, record.value, expected_version=None
                    )
            prepared = Prepared(CommitWrites(), grant.links)
        if checkpoint.status == "suspended" and checkpoint.interrupt is not None:
            self.backend.notifier.notify(
                Notification(
                    kind="suspended",
                    thread_id=checkpoint.thread_id,
                    step=checkpoint.step,
                    node=checkpoint.interrupt.node,
                    summary=(
                        f"thread {checkpoint.thread_id} is waiting for approval at "
                        f"{checkpoint.interrupt.node!r} ({checkpoint.interrupt.when})"
                    ),
                    payload=checkpoint.interrupt.payload,
                    links=prepared.links,
                )
            )

    def _grant(self, checkpoint: Checkpoint) -> LinkGrant:
        """The approval links of a suspension (none for any other step)."""
        mint = self.backend.approval_links
        if mint is None or checkpoint.status != "suspended" or checkpoint.interrupt is None:
            return _NO_GRANT
        return mint(checkpoint)

    def resend_if_head(self, checkpoint: Checkpoint) -> None:
        """A redelivered message found its step committed: if that step is still the head,
        redo every follow-up of its commit (successors, thread record, signature, approval
        notification): the first attempt may have died after the commit, before any of them."""
        after = self.backend.checkpoints.get_checkpoint(checkpoint.thread_id, checkpoint.step + 1)
        if after is None:
            self.after_commit(checkpoint, previous_status=None)


__all__ = [
    "CARRY_LIMIT_BYTES",
    "FollowUps",
    "Prepared",
    "carried_base",
    "messages_for",
    "opened_message",
]
