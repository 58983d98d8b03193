"""The transition queue (SQS FIFO), its dead-letter queue, and the queue for failed starts.

Every transition of every thread is one message on the FIFO queue. The producer sets the
MessageGroupId (per thread, or per task for parallel branches) and a MessageDeduplicationId
derived from (thread, step, node), so content-based deduplication stays off: two messages with
the same body for different tasks must both be delivered.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.components.nag import acknowledge

__all__ = ["MAX_RECEIVE_COUNT", "VISIBILITY_TIMEOUT_FACTOR", "Queueing"]

# A message that failed this many times is a poison message: park it in the DLQ so the rest of
# its message group can proceed. The `dlq` function consumes the DLQ and records every entry on
# its thread (re-driven once when the step never committed, else failed with the reason).
MAX_RECEIVE_COUNT = 5
# AWS's guidance for SQS event sources: visibility timeout at least six times the function
# timeout, so a message is not redelivered while a (retried, throttled) invocation still runs it.
VISIBILITY_TIMEOUT_FACTOR = 6
DLQ_RETENTION = Duration.days(14)


class Queueing(Construct):
    """SQS queues.

    Attributes:
        transitions: the FIFO queue the worker consumes.
        dead_letters: FIFO DLQ for transitions that failed `MAX_RECEIVE_COUNT` times; the
            `dlq` function's event source.
        failed_starts: standard queue receiving S3-triggered starts that failed every retry
            (Lambda's asynchronous-invocation DLQ cannot be FIFO).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        worker_timeout: Duration,
        dead_letter_timeout: Duration,
    ) -> None:
        super().__init__(scope, construct_id)

        self.dead_letters = self._queue(
            "DeadLetters",
            fifo=True,
            content_based_deduplication=False,
            retention_period=DLQ_RETENTION,
            # The `dlq` function consumes it: same rule as the transition queue's timeout.
            visibility_timeout=Duration.seconds(
                dead_letter_timeout.to_seconds() * VISIBILITY_TIMEOUT_FACTOR
            ),
        )
        acknowledge(self.dead_letters, "SQS3", "This queue is the transition queue's DLQ.")

        self.transitions = self._queue(
            "Transitions",
            fifo=True,
            content_based_deduplication=False,
            # High-throughput FIFO. Safe because a deduplication id is unique per task and a
            # task's message group is a pure function of the task: the same id never appears in
            # two groups, so per-group deduplication drops exactly what per-queue would.
            deduplication_scope=sqs.DeduplicationScope.MESSAGE_GROUP,
            fifo_throughput_limit=sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
            visibility_timeout=Duration.seconds(
                worker_timeout.to_seconds() * VISIBILITY_TIMEOUT_FACTOR
            ),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letters, max_receive_count=MAX_RECEIVE_COUNT
            ),
        )

        self.failed_starts = self._queue("FailedStarts", retention_period=DLQ_RETENTION)
        acknowledge(
            self.failed_starts,
            "SQS3",
            "This queue is the s3_trigger function's asynchronous-invocation DLQ.",
        )

    def _queue(self, construct_id: str, **props: Any) -> sqs.Queue:
        """A queue as every queue here is: encrypted at rest (SQS-managed keys) and refusing
        plain HTTP."""
        return sqs.Queue(
            self,
            construct_id,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            **props,
        )
