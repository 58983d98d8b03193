"""The SQS-triggered worker's logic: one transition message in, one settled outcome out.

The Lambda event source mapping (ESM) receives the messages and deletes those the handler
reports as processed, so settling a message here means *returning* (processed: the ESM deletes
it) or *raising* (failed: it comes back after its visibility timeout, and after
`maxReceiveCount` receives SQS moves it to the DLQ). This is the ESM counterpart of
`durable_graph.worker.Worker.handle`, mapping the same error groups:

- committed / duplicate / pending / stale → processed. A duplicate whose step is already
  committed re-sends that step's successors first (`Engine.execute`), so nothing is lost when the
  first attempt died between its commit and its send.
- malformed body → processed (retrying cannot fix it): logged, copied to the DLQ with the reason,
  and the thread failed when one can be recovered: from the body, or else from the record's
  `MessageGroupId` (the thread id, or `thread:task` for a parallel task), so no thread strands.
- `PermanentTaskError` / `UserError` (unknown node, unknown thread, incompatible graph version,
  state over the size limit) → the thread is failed with the reason; processed.
- `TransientError` and anything unexpected → raised: SQS redelivers. Unlike the local worker,
  every receive counts here (SQS counts them), so on the last receive allowed by the redrive
  policy the thread is failed with the reason *before* SQS parks the message in the DLQ.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from durable_graph.backends.aws.factory import AwsRuntime, runtime
from durable_graph.backends.aws.sqs_queue import (
    MalformedMessage,
    SqsTransitionQueue,
    park_in_dlq,
    thread_candidates,
)
from durable_graph.errors import DurableGraphError, PermanentTaskError, TransientError, UserError

log = logging.getLogger("durable_graph.aws.worker")

Kind = Literal["committed", "duplicate", "pending", "stale", "failed_thread", "malformed"]
Bind = Callable[..., Any]
MAX_BACKOFF_SECONDS = 60


@dataclass(frozen=True)
class RecordResult:
    """What processing one record did (the handler counts these as metrics)."""

    kind: Kind
    thread_id: str | None = None
    step: int | None = None


class SqsRecordWorker:
    """Processes SQS records of the transition queue against one `AwsRuntime`."""

    def __init__(self, rt: AwsRuntime) -> None:
        queue = rt.backend.queue
        if not isinstance(queue, SqsTransitionQueue):
            raise TypeError("SqsRecordWorker needs the SQS transition queue")
        self.rt = rt
        self.queue = queue
        self.max_receives = rt.settings.max_receives

    def process(
        self,
        body: str,
        *,
        receipt: str,
        receive_count: int,
        bind: Bind | None = None,
        group_id: str | None = None,
    ) -> RecordResult:
        """Handle one record; returns when it is settled, raises to have SQS redeliver it.

        `group_id` (the record's `MessageGroupId`) names the thread of a body too garbled to
        name it.
        """
        bind = bind or _no_bind
        try:
            delivery = self.queue.parse(body, receipt=receipt, receive_count=receive_count)
        except MalformedMessage as exc:
            return self.malformed(body, exc, group_id, bind)
        message = delivery.message
        step = message.step + 1
        bind(thread_id=message.thread_id, step=step, node=message.task.node)
        try:
            engine = self.rt.engine_for(message.graph.name)
            outcome = engine.execute(message, receive_count=receive_count)
        except (PermanentTaskError, UserError) as exc:
            log.error("permanent failure, failing the thread: %s", exc)
            self.fail(message.thread_id, str(exc), node=message.task.node)
            return RecordResult("failed_thread", message.thread_id, step)
        except Exception as exc:
            if receive_count >= self.max_receives:
                reason = (
                    f"{type(exc).__name__}: {exc} (after {receive_count} receives; the message "
                    "is moved to the dead-letter queue)"
                )
                log.error("giving up: %s", reason)
                self.fail(message.thread_id, reason, node=message.task.node)
            else:
                log.warning("retrying later: %s: %s", type(exc).__name__, exc)
                try:  # come back sooner than the full visibility timeout
                    self.queue.release(delivery, delay=min(2.0**receive_count, MAX_BACKOFF_SECONDS))
                except DurableGraphError:
                    log.warning("could not shorten the visibility timeout", exc_info=True)
            raise
        return RecordResult(outcome.kind, message.thread_id, step)

    def malformed(
        self, body: str, exc: MalformedMessage, group_id: str | None, bind: Bind
    ) -> RecordResult:
        """Park a body that is no transition message and fail the thread it names, if any."""
        named = [exc.thread_id] if exc.thread_id else []
        candidates = list(dict.fromkeys(named + thread_candidates(group_id)))
        bind(thread_id=candidates[0] if candidates else "-", step=None, node=None)
        log.error("malformed transition message: %s", exc)
        self.park(body, str(exc))
        for thread_id in candidates:
            if self.fail(thread_id, str(exc), quiet=True):
                return RecordResult("malformed", thread_id)
        if candidates:
            log.error("no thread %s to record the malformed message on", candidates)
        return RecordResult("malformed", None)

    def fail(self, thread_id: str, reason: str, *, node: str = "", quiet: bool = False) -> bool:
        """Record a permanent failure on the thread, under the graph the thread runs.

        A transient error here is raised (the message is retried, and the failure recorded on
        the next attempt); an unknown thread (logged unless `quiet`) or graph is only logged.
        Returns whether the thread exists.
        """
        try:
            head = self.rt.backend.checkpoints.head_checkpoint(thread_id)
            if head is None:
                if not quiet:
                    log.error("no thread %r to record the failure on", thread_id)
                return False
            engine = self.rt.engine_for(head.graph.name)
            engine.fail_thread(thread_id, reason, node=node)
        except TransientError:
            raise
        except DurableGraphError:
            log.exception("could not record the failure of thread %r", thread_id)
        return True

    def park(self, body: str, reason: str) -> None:
        """Copy an unprocessable body to the DLQ (with the reason) so it can be inspected."""
        url = self.rt.settings.dlq_url
        if url:
            park_in_dlq(self.rt.clients.sqs, url, body, reason)


def _no_bind(**_: Any) -> None:
    return None


@functools.cache
def worker() -> SqsRecordWorker:
    """The process-wide worker (cold start: settings validated, clients built, once)."""
    rt = runtime()
    install_approval_links(rt)
    return SqsRecordWorker(rt)


def install_approval_links(rt: AwsRuntime) -> bool:
    """Make suspensions the worker commits carry signed approval links, when the API is
    configured in this environment (the CDK stack sets its variables on every function)."""
    try:
        from durable_graph.api.aws import ApiSettings, aws_api
    except ImportError:  # pragma: no cover - deployments without the API extra
        return False
    try:
        settings = ApiSettings.from_env()
    except ValueError:
        log.info("approval links off: the API environment is not set")
        return False
    from durable_graph.backends.aws.factory import CLIENT_CONFIG, default_session

    session = default_session()
    api = aws_api(
        settings,
        rt.backend,
        secretsmanager=session.client("secretsmanager", config=CLIENT_CONFIG),
        ssm=session.client("ssm", config=CLIENT_CONFIG),
    )
    api.install_links()
    return True
