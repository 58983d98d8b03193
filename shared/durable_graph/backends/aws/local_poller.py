"""What the Lambda SQS event source mapping (ESM) does, for running the worker handler locally.

Receive a batch from the queue → build the exact SQS event Lambda would → invoke the handler →
delete the records it did not report in `batchItemFailures` (one DeleteMessageBatch) → failed
records come back when their visibility timeout ends. A handler that raises, or a simulated
crash, leaves the whole batch to come back, as a Lambda timeout or runtime crash would.

Tests, the benchmarks and anyone running the AWS runtime against LocalStack or moto use this to
drive `functions/worker/handler.py` with real queue messages.

Example:
    >>> from durable_graph.backends.aws.local_poller import EventSourcePoller
    >>> # poller = EventSourcePoller(sqs_client, queue_url, handler)
    >>> # poller.drain(until=lambda: thread_is_done())
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

log = logging.getLogger("durable_graph.aws.poller")

Handler = Callable[[dict[str, Any], Any], Mapping[str, Any] | None]


class InvocationCrashed(BaseException):
    """Raise (e.g. from a botocore event hook) to simulate the Lambda runtime dying mid-batch.

    A `BaseException`, so no `except Exception` in the code under test can swallow it.
    """


@dataclass
class LocalLambdaContext:
    """The attributes of the Lambda context object that powertools reads."""

    function_name: str = "durable-graph-worker"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 128
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:123456789012:function:durable-graph-worker"
    )
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/durable-graph-worker"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class PollStats:
    invocations: int = 0
    records: int = 0
    failed_records: int = 0
    crashed_invocations: int = 0
    errors: list[str] = field(default_factory=list)


class EventSourcePoller:
    """Feeds a queue's messages to a Lambda handler the way the SQS ESM does.

    Args:
        client: SQS client.
        queue_url: the queue the ESM polls.
        handler: `handler(event, context)` returning `{"batchItemFailures": [...]}`.
        batch_size: records per invocation (the ESM's `BatchSize`).
        visibility_timeout: override of the queue's visibility timeout for each receive.
        skip_waits: make failed or crashed records visible again at once, instead of waiting
            for their visibility timeout to end (time skipped, order and counts unchanged).
    """

    def __init__(
        self,
        client: SQSClient,
        queue_url: str,
        handler: Handler,
        *,
        batch_size: int = 1,
        visibility_timeout: int | None = None,
        skip_waits: bool = True,
    ) -> None:
        self.client = client
        self.queue_url = queue_url
        self.handler = handler
        self.batch_size = batch_size
        self.visibility_timeout = visibility_timeout
        self.skip_waits = skip_waits
        self.stats = PollStats()
        self._arn: str | None = None

    @property
    def queue_arn(self) -> str:
        if self._arn is None:
            attributes = self.client.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
            )["Attributes"]
            self._arn = str(attributes["QueueArn"])
        return self._arn

    def receive(self) -> list[MessageTypeDef]:
        request: dict[str, Any] = {
            "QueueUrl": self.queue_url,
            "MaxNumberOfMessages": self.batch_size,
            "MessageSystemAttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
        }
        if self.visibility_timeout is not None:
            request["VisibilityTimeout"] = self.visibility_timeout
        return list(self.client.receive_message(**request).get("Messages", []))

    def event_for(self, messages: list[MessageTypeDef]) -> dict[str, Any]:
        """The event Lambda passes for these messages (the documented SQS event shape)."""
        region = self.queue_arn.split(":")[3]
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": dict(m.get("Attributes", {})),
                    "messageAttributes": {
                        name: {
                            "stringValue": value.get("StringValue"),
                            "binaryValue": None,
                            "stringListValues": [],
                            "binaryListValues": [],
                            "dataType": value["DataType"],
                        }
                        for name, value in m.get("MessageAttributes", {}).items()
                    },
                    "md5OfBody": m.get("MD5OfBody") or hashlib.md5(m["Body"].encode()).hexdigest(),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": region,
                }
                for m in messages
            ]
        }

    def poll_once(self) -> int:
        """One receive → invoke → delete cycle; returns how many records were delivered."""
        messages = self.receive()
        if not messages:
            return 0
        self.stats.invocations += 1
        self.stats.records += len(messages)
        by_id = {m["MessageId"]: m for m in messages}
        try:
            response = self.handler(self.event_for(messages), LocalLambdaContext()) or {}
        except InvocationCrashed as crash:
            self.stats.crashed_invocations += 1
            self.stats.errors.append(f"crash: {crash}")
            self._come_back(messages)
            return len(messages)
        except Exception as exc:  # a function error: Lambda retries the whole batch
            log.warning("handler raised: %s", exc)
            self.stats.crashed_invocations += 1
            self.stats.errors.append(f"{type(exc).__name__}: {exc}")
            self._come_back(messages)
            return len(messages)
        failed_ids = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        self.stats.failed_records += len(failed_ids)
        done = [m for m in messages if m["MessageId"] not in failed_ids]
        if done:
            try:
                self.client.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(done)
                    ],
                )
            except (InvocationCrashed, Exception) as exc:  # the ack never reached SQS
                self.stats.errors.append(f"delete failed: {exc}")
                self._come_back(done)
        self._come_back([by_id[i] for i in failed_ids if i in by_id])
        return len(messages)

    def drain(
        self, *, until: Callable[[], bool] | None = None, max_invocations: int = 1000
    ) -> PollStats:
        """Poll until a receive gives nothing or `until()` holds, at most `max_invocations`."""
        for _ in range(max_invocations):
            if until is not None and until():
                break
            if self.poll_once() == 0:
                break
        return self.stats

    def _come_back(self, messages: list[MessageTypeDef]) -> None:
        if not self.skip_waits:
            return
        for m in messages:
            self.client.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
            )
