"""The DLQ consumer (`functions/dlq` + `backends/aws/dead_letters`): every dead-lettered
transition ends recorded on its thread. SQS's move to the DLQ (after `maxReceiveCount` receives
by crashed workers) is played by `dead_letter_all`, which moves what is queued as SQS would:
same body, same group, same deduplication id; the crash-storm tests let moto's redrive policy
do the move itself."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from durable_graph.backends.aws.dead_letters import DeadLetterSettler
from durable_graph.backends.aws.errors import AwsUnavailable
from durable_graph.backends.aws.local_poller import (
    EventSourcePoller,
    InvocationCrashed,
    PollStats,
)
from durable_graph.ports.transition_queue import TransitionMessage
from functions.dlq.handler import handler as dlq_handler
from tests.aws.conftest import CHAIN, AwsWorld
from tests.aws.faults import Fault, connection_dropped


def dead_letter_all(world: AwsWorld) -> int:
    """Move every queued transition to the DLQ, as SQS does after the last failed receive."""
    sqs, settings = world.clients.sqs, world.resources.settings
    assert settings.dlq_url
    moved = 0
    while messages := sqs.receive_message(
        QueueUrl=settings.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    ).get("Messages", []):
        for m in messages:
            attributes = m["Attributes"]
            sqs.send_message(
                QueueUrl=settings.dlq_url,
                MessageBody=m["Body"],
                MessageGroupId=attributes["MessageGroupId"],
                MessageDeduplicationId=attributes["MessageDeduplicationId"],
            )
            sqs.delete_message(QueueUrl=settings.queue_url, ReceiptHandle=m["ReceiptHandle"])
            moved += 1
    return moved


def settle_dlq(world: AwsWorld) -> PollStats:
    """Run the `dlq` function over what the DLQ holds, as its event source mapping would."""
    assert world.resources.settings.dlq_url
    poller = EventSourcePoller(
        world.clients.sqs, world.resources.settings.dlq_url, dlq_handler, batch_size=10
    )
    return poller.drain()


def dlq_depth(world: AwsWorld) -> int:
    assert world.resources.settings.dlq_url
    attributes = world.clients.sqs.get_queue_attributes(
        QueueUrl=world.resources.settings.dlq_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def test_stranded_thread_is_redriven_once_then_failed_with_the_reason(chain: AwsWorld) -> None:
    """Given a thread whose first task was dead-lettered without ever committing, when the DLQ
    consumer runs, then the task is re-sent (fresh dedup id, so SQS does not drop it); when it
    is dead-lettered a second time, then the thread is failed with the reason."""
    chain.rt.graph.start({}, thread_id="stranded-1")
    assert dead_letter_all(chain) == 1

    first = settle_dlq(chain)
    assert (first.records, first.failed_records) == (1, 0)
    assert (chain.head("stranded-1").status, chain.queue_depth(), dlq_depth(chain)) == (
        "running",
        1,
        0,
    )

    assert dead_letter_all(chain) == 1
    second = settle_dlq(chain)
    assert (second.records, second.failed_records) == (1, 0)
    head = chain.head("stranded-1")
    assert head.status == "failed" and head.error is not None
    assert "dead-lettered twice" in head.error.message
    assert (chain.queue_depth(), dlq_depth(chain)) == (0, 0)


def test_redriven_task_completes_the_thread(chain: AwsWorld) -> None:
    """A re-drive is a real delivery: the worker runs it and the thread goes on."""
    chain.rt.graph.start({}, thread_id="stranded-2")
    dead_letter_all(chain)
    settle_dlq(chain)
    chain.drain()
    assert chain.head("stranded-2").status == "completed"


def test_dead_letter_whose_step_was_committed_is_ignored(chain: AwsWorld) -> None:
    """Given a message dead-lettered after its step had committed (the worker died before the
    delete), then the consumer leaves the thread and the queue as they are."""
    rt = chain.rt
    rt.graph.start({}, thread_id="done-1")
    body = chain.clients.sqs.receive_message(
        QueueUrl=chain.resources.settings.queue_url, MessageSystemAttributeNames=["All"]
    )["Messages"][0]
    chain.clients.sqs.change_message_visibility(
        QueueUrl=chain.resources.settings.queue_url,
        ReceiptHandle=body["ReceiptHandle"],
        VisibilityTimeout=0,
    )
    chain.drain()
    assert chain.head("done-1").status == "completed"
    settler = DeadLetterSettler(rt)

    result = settler.settle(body["Body"], group_id="done-1", receive_count=1)

    assert result.outcome == "done"
    assert chain.head("done-1").status == "completed"
    assert chain.queue_depth() == 0


def test_garbled_dead_letter_fails_the_thread_its_group_names(chain: AwsWorld) -> None:
    """Given a body no worker can parse, dead-lettered under the thread's group id, then the
    thread is failed with the parse error."""
    chain.rt.graph.start({}, thread_id="garbled-1")
    dead_letter_all(chain)  # the real task is lost with the crash; only the garbled copy stays
    settle = DeadLetterSettler(chain.rt)

    result = settle.settle("{not json", group_id="garbled-1", receive_count=5)

    assert (result.outcome, result.thread_id) == ("failed_thread", "garbled-1")
    head = chain.head("garbled-1")
    assert head.status == "failed" and head.error is not None
    assert "not JSON" in head.error.message


def test_garbled_copy_of_a_thread_already_failed_is_only_logged(chain: AwsWorld) -> None:
    """The worker fails a garbled body's thread itself and parks a copy in the DLQ; the
    consumer then finds the thread failed: the entry is explained, not counted as stranded."""
    chain.rt.graph.start({}, thread_id="garbled-3")
    settler = DeadLetterSettler(chain.rt)
    settler.settle("{not json", group_id="garbled-3", receive_count=1)
    failed = chain.head("garbled-3")

    again = settler.settle('{"thread_id": "garbled-3"}', group_id="malformed", receive_count=1)

    assert (again.outcome, again.thread_id) == ("done", "garbled-3")
    assert chain.head("garbled-3") == failed


def test_garbled_dead_letter_of_a_parallel_task_fails_its_thread(chain: AwsWorld) -> None:
    """A parallel task's group id is `thread:task`; the thread is recovered from it."""
    chain.rt.graph.start({}, thread_id="garbled-2")
    result = DeadLetterSettler(chain.rt).settle("[]", group_id="garbled-2:1:abc", receive_count=5)
    assert (result.outcome, result.thread_id) == ("failed_thread", "garbled-2")


def test_records_that_cannot_be_settled_are_reported_as_batch_failures(
    chain: AwsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given two dead letters of two threads and a table that fails for one of them, then the
    handler reports that record only; it comes back and is settled once the table recovers."""
    chain.rt.graph.start({}, thread_id="ok-1")
    chain.rt.graph.start({}, thread_id="flaky-1")
    dead_letter_all(chain)
    original = DeadLetterSettler.settle_message

    def flaky(
        self: DeadLetterSettler, message: TransitionMessage, body: str, group_id: str | None
    ) -> object:
        if message.thread_id == "flaky-1":
            raise AwsUnavailable("GetItem: throttled")
        return original(self, message, body, group_id)

    monkeypatch.setattr(DeadLetterSettler, "settle_message", flaky)
    poller = EventSourcePoller(
        chain.clients.sqs, chain.resources.settings.dlq_url or "", dlq_handler, batch_size=10
    )
    poller.poll_once()
    assert (poller.stats.records, poller.stats.failed_records) == (2, 1)
    assert dlq_depth(chain) == 1

    monkeypatch.setattr(DeadLetterSettler, "settle_message", original)
    settle_dlq(chain)
    assert dlq_depth(chain) == 0
    assert chain.queue_depth() == 2  # both re-driven


def crashing_worker(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """A worker that dies on every record before any code could record a failure."""
    raise InvocationCrashed("killed")


def test_crash_storm_on_moto_strands_nothing(
    aws_factory: Callable[..., AwsWorld], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given workers that crash on every receive, so that SQS itself dead-letters the messages
    (moto applies the redrive policy), then the DLQ consumer re-drives each task once and, when
    the crashes go on, fails each thread with the reason: none is left `running`, both queues
    end empty, and every DLQ entry was settled."""
    monkeypatch.setenv("DG_EFFECTS", str(tmp_path / "effects"))
    world = aws_factory(graph=CHAIN, max_receives=2)
    threads = [f"storm-{i}" for i in range(3)]
    for thread_id in threads:
        world.rt.graph.start({}, thread_id=thread_id)
    crashes = EventSourcePoller(
        world.clients.sqs, world.resources.settings.queue_url, crashing_worker, batch_size=10
    )
    settled = 0
    for _ in range(2):  # the first round is re-driven, the second fails the threads
        crashes.drain()
        assert dlq_depth(world) == len(threads)
        stats = settle_dlq(world)
        settled += stats.records - stats.failed_records

    assert settled == 2 * len(threads)
    assert (world.queue_depth(), dlq_depth(world)) == (0, 0)
    for thread_id in threads:
        head = world.head(thread_id)
        assert head.status == "failed" and head.error is not None
        assert "dead-lettered twice" in head.error.message


def test_crash_storm_that_ends_completes_the_redriven_threads(
    aws_factory: Callable[..., AwsWorld], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given crashes until SQS dead-letters the first task, when workers are healthy again,
    then the re-driven task runs and the thread completes."""
    monkeypatch.setenv("DG_EFFECTS", str(tmp_path / "effects"))
    world = aws_factory(graph=CHAIN, max_receives=2)
    world.rt.graph.start({}, thread_id="storm-ok")
    EventSourcePoller(
        world.clients.sqs, world.resources.settings.queue_url, crashing_worker
    ).drain()
    settle_dlq(world)
    world.drain()
    assert world.head("storm-ok").status == "completed"
    assert dlq_depth(world) == 0


def test_redrive_whose_send_failed_is_sent_on_the_retry_not_failed(chain: AwsWorld) -> None:
    """Given a re-drive whose send is lost (the record already says a re-drive began), when the
    DLQ record comes back, then the retry sends it: the thread is not failed for SQS's error."""
    chain.rt.graph.start({}, thread_id="resend-1")
    dead_letter_all(chain)
    Fault("before-call.sqs.SendMessage", error=connection_dropped).install(chain.rt.clients.sqs)

    stats = settle_dlq(chain)

    # The first attempt failed (its only record: powertools fails the whole batch); the retry
    # settled it.
    assert (stats.invocations, stats.crashed_invocations) == (2, 1)
    assert (chain.head("resend-1").status, chain.queue_depth(), dlq_depth(chain)) == (
        "running",
        1,
        0,
    )
