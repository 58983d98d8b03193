"""TransitionQueue on an SQS FIFO queue.

- `MessageGroupId` = `message.group_id` (the thread, or the task for parallel branches so that
  branches run concurrently) — used as is when SQS accepts it, else hashed.
- `MessageDeduplicationId` = sha256 of `message.dedup_id` (thread, step, task): a transition sent
  twice within SQS's five-minute window is delivered once. Ids must be at most 128 characters of
  a restricted alphabet; a hex digest always is.
- Body = the message JSON. It carries the state of small threads (see `followups.messages_for`)
  and stays far below the 64 KB billing chunk; a body above `body_limit` is stored in the
  payload bucket under the queue's own prefix (`names.MESSAGE_PREFIX`, which the payload
  collector never lists and a lifecycle rule expires after the DLQ's retention) and the message
  carries only the ref (claim check).

Dead-lettering needs no code: the queue's redrive policy moves a message that failed
`maxReceiveCount` times to the DLQ. In Lambda the event source mapping receives and deletes;
`receive`/`ack`/`release` serve local workers, the conformance suite and the benchmarks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from durable_graph.backends.aws.errors import AwsUnavailable, error_code, translate
from durable_graph.checkpoint import PayloadRef
from durable_graph.errors import PayloadCorrupted, PermanentTaskError
from durable_graph.ports.payload_store import PayloadStore
from durable_graph.ports.poison import PoisonMessage
from durable_graph.ports.transition_queue import Delivery, TransitionMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeFilterType
    from mypy_boto3_sqs.type_defs import (
        DeleteMessageBatchRequestEntryTypeDef,
        MessageTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

log = logging.getLogger("durable_graph.aws.sqs")

CLAIM_CHECK = "$claim_check"
# SQS bills a request per 64 KB chunk of payload; stay in one chunk, leaving room for attributes.
DEFAULT_BODY_LIMIT = 60 * 1024
SEND_BATCH = 10  # SendMessageBatch (and DeleteMessageBatch) take at most ten entries
_SQS_ID = re.compile(r"^[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]{1,128}$")


def sqs_id(value: str) -> str:
    """`value` if SQS accepts it as a group id, else its sha256 (same input, same id)."""
    return value if _SQS_ID.match(value) else hashlib.sha256(value.encode()).hexdigest()


def dedup_token(message: TransitionMessage) -> str:
    return hashlib.sha256(message.dedup_id.encode()).hexdigest()


_TASK_SUFFIX = re.compile(r":(?=\d+:)")


def thread_candidates(group_id: str | None) -> list[str]:
    """Thread ids a `MessageGroupId` may stand for, most likely first.

    A group id is the thread id, or `thread:task` for a parallel task, whose task id starts with
    `<step>:`; a thread id may itself hold ':', so every split before such a suffix is a
    candidate (the caller takes the first that names an existing thread). A group id SQS could
    not take as is was hashed and names no thread, but costs only a lookup.
    """
    if not group_id:
        return []
    splits = [match.start() for match in _TASK_SUFFIX.finditer(group_id)]
    return [group_id] + [group_id[:at] for at in reversed(splits) if at]


def park_in_dlq(client: SQSClient, dlq_url: str, body: str, reason: str) -> bool:
    """Copy an unprocessable body to the DLQ with the reason, so it can be inspected; False
    (logged) when the copy failed."""
    digest = hashlib.sha256(body.encode("utf-8", "replace")).hexdigest()
    try:
        client.send_message(
            QueueUrl=dlq_url,
            MessageBody=body or "<empty>",
            MessageGroupId="malformed",
            MessageDeduplicationId=digest,
            MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:1024]}},
        )
    except (ClientError, BotoCoreError):
        log.exception("could not copy the malformed message to the DLQ")
        return False
    return True


class MalformedMessage(PermanentTaskError):
    """A queue message that is not a transition message; retrying cannot fix it.

    `thread_id` is set when the body still names one, so the thread can be failed with a reason.
    """

    code = "malformed_message"

    def __init__(self, reason: str, *, thread_id: str | None = None) -> None:
        super().__init__(f"malformed transition message: {reason}")
        self.thread_id = thread_id


class SqsTransitionQueue:
    """Implements `durable_graph.ports.transition_queue.TransitionQueue`.

    Args:
        client: a boto3 SQS client.
        queue_url: the FIFO transition queue.
        payloads: where bodies over `body_limit` go (claim check).
        body_limit: largest body sent inline, in bytes.
        wait_seconds: long-poll time of `receive` (0 = short poll, for tests and benchmarks).
        dlq_url: where `receive` copies a message it cannot parse before deleting it; without
            one the message is left in flight and the redrive policy moves it to the DLQ.
    """

    def __init__(
        self,
        client: SQSClient,
        queue_url: str,
        *,
        payloads: PayloadStore,
        body_limit: int = DEFAULT_BODY_LIMIT,
        wait_seconds: int = 0,
        dlq_url: str | None = None,
    ) -> None:
        self.client = client
        self.queue_url = queue_url
        self.payloads = payloads
        self.body_limit = body_limit
        self.wait_seconds = wait_seconds
        self.dlq_url = dlq_url
        self._poison_lock = threading.Lock()
        self._poisoned: list[PoisonMessage] = []

    # ------------------------------------------------------------------ sending

    def body_for(self, message: TransitionMessage) -> str:
        body = message.model_dump_json()
        if len(body.encode("utf-8")) <= self.body_limit:
            return body
        ref = self.payloads.put(body.encode("utf-8"), "application/json")
        return json.dumps(
            {CLAIM_CHECK: ref.model_dump(mode="json"), "thread_id": message.thread_id}
        )

    def send(self, messages: Sequence[TransitionMessage]) -> None:
        for start in range(0, len(messages), SEND_BATCH):
            chunk = messages[start : start + SEND_BATCH]
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {
                    "Id": str(index),
                    "MessageBody": self.body_for(message),
                    "MessageGroupId": sqs_id(message.group_id),
                    "MessageDeduplicationId": dedup_token(message),
                }
                for index, message in enumerate(chunk)
            ]
            try:
                response = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, "SendMessageBatch") from exc
            failed = response.get("Failed", [])
            if failed:
                # Retrying the whole send is safe: entries that went through are deduplicated.
                first = failed[0]
                raise AwsUnavailable(
                    f"SendMessageBatch: {len(failed)} of {len(entries)} entries failed "
                    f"({first.get('Code')}: {first.get('Message', '')})"
                )

    # ------------------------------------------------------------------ receiving

    def parse(self, body: str, *, receipt: str, receive_count: int) -> Delivery:
        """Turn an SQS body into a delivery; raises `MalformedMessage` for anything else."""
        try:
            raw = json.loads(body)
        except ValueError as exc:
            raise MalformedMessage(f"body is not JSON ({exc})") from exc
        thread_id = raw.get("thread_id") if isinstance(raw, dict) else None
        thread_id = thread_id if isinstance(thread_id, str) and thread_id else None
        if isinstance(raw, dict) and CLAIM_CHECK in raw:
            try:
                ref = PayloadRef.model_validate(raw[CLAIM_CHECK])
                raw = json.loads(self.payloads.get(ref))
            except (ValidationError, ValueError, PayloadCorrupted) as exc:
                raise MalformedMessage(f"bad claim check ({exc})", thread_id=thread_id) from exc
        try:
            message = TransitionMessage.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            raise MalformedMessage(f"{where}: {first['msg']}", thread_id=thread_id) from exc
        return Delivery(message=message, receipt=receipt, receive_count=receive_count)

    def receive(
        self,
        *,
        max_messages: int = 1,
        visibility_timeout: float = 60.0,
        thread_id: str | None = None,
    ) -> list[Delivery]:
        if thread_id is not None:
            raise NotImplementedError("SQS cannot receive one thread's messages only")
        try:
            response = self.client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=max(1, min(max_messages, 10)),
                VisibilityTimeout=math.ceil(visibility_timeout),
                WaitTimeSeconds=self.wait_seconds,
                MessageSystemAttributeNames=["ApproximateReceiveCount", "MessageGroupId"],
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "ReceiveMessage") from exc
        deliveries: list[Delivery] = []
        groups: set[str] = set()
        for raw in response.get("Messages", []):
            count = int(raw.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
            try:
                delivery = self.parse(
                    raw["Body"], receipt=raw["ReceiptHandle"], receive_count=count
                )
            except MalformedMessage as exc:
                self._set_aside(raw, exc)
                continue
            group = delivery.message.group_id
            if group in groups:
                # SQS may hand out several messages of one group in a batch; the port promises
                # one in flight per group. Hand this one back: SQS keeps it behind the first.
                self.release(delivery)
                continue
            groups.add(group)
            deliveries.append(delivery)
        return deliveries

    def _set_aside(self, raw: MessageTypeDef, exc: MalformedMessage) -> None:
        """A poison message: copied to the DLQ and deleted (left in flight for the redrive
        policy when there is no DLQ to copy to, or the copy failed), and reported to the
        worker through `take_poisoned` with the threads it may name, so the thread is failed."""
        log.error("poison message %s: %s", raw.get("MessageId"), exc)
        if self.dlq_url and park_in_dlq(self.client, self.dlq_url, raw["Body"], str(exc)):
            try:
                self.client.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=raw["ReceiptHandle"]
                )
            except (ClientError, BotoCoreError):
                log.warning("could not delete poison message %s", raw.get("MessageId"))
        group = raw.get("Attributes", {}).get("MessageGroupId")
        named = [exc.thread_id] if exc.thread_id else []
        candidates = tuple(dict.fromkeys(named + thread_candidates(group)))
        with self._poison_lock:
            self._poisoned.append(PoisonMessage(thread_ids=candidates, reason=str(exc)))

    def take_poisoned(self) -> list[PoisonMessage]:
        """The poison messages `receive` set aside since the last call (`PoisonReporting`)."""
        with self._poison_lock:
            found, self._poisoned = self._poisoned, []
        return found

    def ack(self, delivery: Delivery) -> None:
        try:
            self.client.delete_message(QueueUrl=self.queue_url, ReceiptHandle=delivery.receipt)
        except ClientError as exc:
            if error_code(exc) == "ReceiptHandleIsInvalid":
                log.warning("ack of a message already gone: %s", delivery.message.dedup_id)
                return
            raise translate(exc, "DeleteMessage") from exc
        except BotoCoreError as exc:
            raise translate(exc, "DeleteMessage") from exc

    def ack_many(self, deliveries: Sequence[Delivery]) -> None:
        """One DeleteMessageBatch per ten deliveries; a receipt SQS no longer knows (the lease
        ran out, the message is gone) is logged and skipped, as by `ack`."""
        for start in range(0, len(deliveries), SEND_BATCH):
            chunk = deliveries[start : start + SEND_BATCH]
            entries: list[DeleteMessageBatchRequestEntryTypeDef] = [
                {"Id": str(index), "ReceiptHandle": delivery.receipt}
                for index, delivery in enumerate(chunk)
            ]
            try:
                response = self.client.delete_message_batch(
                    QueueUrl=self.queue_url, Entries=entries
                )
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, "DeleteMessageBatch") from exc
            failures = response.get("Failed", [])
            for entry in failures:
                if entry.get("Code") == "ReceiptHandleIsInvalid":
                    gone = chunk[int(entry["Id"])].message.dedup_id
                    log.warning("ack of a message already gone: %s", gone)
            failed = [e for e in failures if e.get("Code") != "ReceiptHandleIsInvalid"]
            if failed:  # acknowledging again is safe: a deleted message is skipped as gone
                first = failed[0]
                raise AwsUnavailable(
                    f"DeleteMessageBatch: {len(failed)} of {len(entries)} entries failed "
                    f"({first.get('Code')}: {first.get('Message', '')})"
                )

    def release(self, delivery: Delivery, *, delay: float = 0.0) -> None:
        try:
            self.client.change_message_visibility(
                QueueUrl=self.queue_url,
                ReceiptHandle=delivery.receipt,
                VisibilityTimeout=max(0, math.ceil(delay)),
            )
        except ClientError as exc:
            if error_code(exc) in ("MessageNotInflight", "ReceiptHandleIsInvalid"):
                return  # already visible again or gone: nothing to release
            raise translate(exc, "ChangeMessageVisibility") from exc
        except BotoCoreError as exc:
            raise translate(exc, "ChangeMessageVisibility") from exc

    def depth(self) -> int:
        return queue_depth(self.client, self.queue_url)


def queue_depth(client: SQSClient, queue_url: str) -> int:
    """Messages visible, in flight or delayed (approximate, as SQS reports them)."""
    keys: list[QueueAttributeFilterType] = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    try:
        attributes = client.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=keys,
        )["Attributes"]
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, "GetQueueAttributes") from exc
    counts: dict[str, str] = {str(k): v for k, v in attributes.items()}
    return sum(int(counts.get(key) or "0") for key in keys)


def peek_thread_ids(client: SQSClient, queue_url: str, *, limit: int = 10) -> list[str]:
    """Thread ids named by up to `limit` messages of a queue (the DLQ), left in place.

    Receives with a zero visibility timeout, so the messages stay visible; on a DLQ (which has
    no redrive of its own) the receive count this adds is harmless.
    """
    try:
        response = client.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=max(1, min(limit, 10)), VisibilityTimeout=0
        )
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, "ReceiveMessage DLQ") from exc
    found: list[str] = []
    for raw in response.get("Messages", []):
        try:
            body: Any = json.loads(raw["Body"])
        except ValueError:
            continue
        thread_id = body.get("thread_id") if isinstance(body, dict) else None
        if isinstance(thread_id, str) and thread_id not in found:
            found.append(thread_id)
    return found
