"""Settle what SQS dead-letters: every DLQ entry ends recorded on its thread (the `dlq` function).

SQS moves a transition message to the DLQ after `maxReceiveCount` receives. When every receive
ended in a worker that crashed (killed, timed out, out of memory) no code saw the last attempt,
so nothing recorded a failure: the thread says `running`, nothing is queued for it, and it
would strand. This consumer reads each dead letter against the thread's head:

- the head moved past the message's step, or the thread is no longer `running` → the work was
  done (or the failure already recorded, e.g. by the worker's last attempt): nothing to do.
- the head is still the message's step and `running` → the task never committed. The first
  time, the message is re-driven: sent again to the transition queue with a fresh
  deduplication id (the original id may still be inside SQS's five-minute window). A crash
  storm is usually transient, and the task is idempotent (a step commits once; effects carry
  idempotency keys), so one more round of receives is cheap. The re-drive is recorded in a CAS
  record per message (created before the send, marked sent after it), so a second
  dead-lettering of the same message finds it and fails the thread with the reason instead of
  looping forever.
- a body that is not a transition message → the thread is recovered from the body or the
  `MessageGroupId` (as the worker does) and failed with the reason; when the worker already
  failed it (it parks such bodies here itself), the entry is only logged.

Every entry is logged with its outcome; the handler counts outcomes as metrics.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass
from typing import Literal

from botocore.exceptions import BotoCoreError, ClientError

from durable_graph.backends.aws.errors import translate
from durable_graph.backends.aws.factory import AwsRuntime, runtime
from durable_graph.backends.aws.sqs_queue import (
    MalformedMessage,
    SqsTransitionQueue,
    sqs_id,
    thread_candidates,
)
from durable_graph.checkpoint import VersionedRecord
from durable_graph.errors import RecordConflict
from durable_graph.ports.transition_queue import TransitionMessage

log = logging.getLogger("durable_graph.aws.dead_letters")

Outcome = Literal["done", "redriven", "failed_thread", "no_thread"]
REDRIVE_RECORD_PREFIX = "redrive:"  # CAS record key of a re-driven message: + its dedup id
BODY_LOGGED = 512  # characters of a garbled body kept in its log line


@dataclass(frozen=True)
class DeadLetterResult:
    """How one dead letter was settled (the handler counts these as metrics)."""

    outcome: Outcome
    thread_id: str | None
    reason: str


class DeadLetterSettler:
    """Settles dead-lettered transition messages against one `AwsRuntime`."""

    def __init__(self, rt: AwsRuntime) -> None:
        queue = rt.backend.queue
        if not isinstance(queue, SqsTransitionQueue):
            raise TypeError("DeadLetterSettler needs the SQS transition queue")
        self.rt = rt
        self.queue = queue

    def settle(self, body: str, *, group_id: str | None, receive_count: int) -> DeadLetterResult:
        """Record one dead letter on its thread; raises `TransientError` to be retried."""
        try:
            message = self.queue.parse(body, receipt="dlq", receive_count=receive_count).message
        except MalformedMessage as exc:
            return self.fail_garbled(body, exc, group_id)
        result = self.settle_message(message, body, group_id)
        log.warning(
            "dead letter %s: %s",
            result.outcome,
            result.reason,
            extra={"thread_id": message.thread_id, "step": message.step},
        )
        return result

    def settle_message(
        self, message: TransitionMessage, body: str, group_id: str | None
    ) -> DeadLetterResult:
        """Decide by the thread's head whether the message's work was done, and act if not."""
        head = self.rt.backend.checkpoints.head_checkpoint(message.thread_id)
        if head is None:
            return DeadLetterResult("no_thread", message.thread_id, "the thread does not exist")
        if head.step != message.step or head.status != "running":
            reason = f"head is step {head.step} ({head.status}); message was for step"
            return DeadLetterResult("done", message.thread_id, f"{reason} {message.step}")
        claim = self.claim_redrive(message)
        if claim is not None:
            self.redrive(message, body, group_id)
            self.mark_sent(message.thread_id, claim)
            return DeadLetterResult(
                "redriven", message.thread_id, f"step {message.step} never committed; re-sent"
            )
        reason = (
            f"task {message.task.node!r} of step {message.step} was dead-lettered twice "
            "(every receive ended without a result, e.g. the worker crashed or timed out)"
        )
        self.fail(message.thread_id, reason, node=message.task.node)
        return DeadLetterResult("failed_thread", message.thread_id, reason)

    def claim_redrive(self, message: TransitionMessage) -> VersionedRecord | None:
        """The message's re-drive record when it may be re-sent, None when it was already.

        The first caller creates the record (`sent: false`); a retry of a delivery whose send
        failed finds it unsent and sends again (under the same deduplication id, so a send that
        did land is not doubled). Only a record marked sent means a second dead-lettering.
        """
        try:
            return self.rt.backend.checkpoints.put_record(
                message.thread_id,
                REDRIVE_RECORD_PREFIX + message.dedup_id,
                {"step": message.step, "task": message.task.id, "sent": False},
                expected_version=None,  # create-only: the store conditions on no such record
            )
        except RecordConflict as conflict:
            current = conflict.current
            if isinstance(current, VersionedRecord) and current.value.get("sent") is False:
                return current
            return None

    def mark_sent(self, thread_id: str, claim: VersionedRecord) -> None:
        """Mark the re-drive done, so the next dead-lettering of the message fails the thread."""
        try:
            self.rt.backend.checkpoints.put_record(
                thread_id,
                claim.key,
                {**claim.value, "sent": True},
                expected_version=claim.version,  # CAS: only over the version this call claimed
            )
        except RecordConflict:  # another delivery of the same message marked it: same outcome
            log.warning("re-drive record %r changed meanwhile", claim.key)

    def redrive(self, message: TransitionMessage, body: str, group_id: str | None) -> None:
        """Send the body again, under a deduplication id SQS has not seen for this task."""
        token = hashlib.sha256(f"{message.dedup_id}:redrive".encode()).hexdigest()
        try:
            self.rt.clients.sqs.send_message(
                QueueUrl=self.rt.settings.queue_url,
                MessageBody=body,
                MessageGroupId=group_id or sqs_id(message.group_id),
                MessageDeduplicationId=token,
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "SendMessage redrive") from exc

    def fail_garbled(
        self, body: str, exc: MalformedMessage, group_id: str | None
    ) -> DeadLetterResult:
        """Fail the first thread the body or its group id names.

        The worker fails that thread itself when it meets the body (and parks a copy here, for
        inspection); such a thread is already failed and the entry is only logged, with the
        body's start, since consuming it removes it from the DLQ.
        """
        named = [exc.thread_id] if exc.thread_id else []
        for thread_id in dict.fromkeys(named + thread_candidates(group_id)):
            status = self.fail(thread_id, str(exc))
            if status is None:
                continue
            settled = status in ("completed", "failed")
            log.error(
                "dead letter garbled (%s): %s; body starts %r",
                f"thread already {status}" if settled else "thread failed",
                exc,
                body[:BODY_LOGGED],
                extra={"thread_id": thread_id},
            )
            if settled:
                return DeadLetterResult("done", thread_id, f"already {status}: {exc}")
            return DeadLetterResult("failed_thread", thread_id, str(exc))
        log.error(
            "dead letter garbled, names no thread (group %r): %s; body starts %r",
            group_id,
            exc,
            body[:BODY_LOGGED],
        )
        return DeadLetterResult("no_thread", None, str(exc))

    def fail(self, thread_id: str, reason: str, *, node: str = "") -> str | None:
        """Record the failure under the thread's own graph; returns the thread's status before
        (None: no such thread). `Engine.fail_thread` leaves a completed or failed thread as it
        is."""
        head = self.rt.backend.checkpoints.head_checkpoint(thread_id)
        if head is None:
            return None
        self.rt.engine_for(head.graph.name).fail_thread(thread_id, reason, node=node)
        return head.status


@functools.cache
def settler() -> DeadLetterSettler:
    """The process-wide settler (cold start: settings validated, clients built, once)."""
    return DeadLetterSettler(runtime())
