"""The SQS worker (`functions/worker` + `backends/aws/lambda_worker`) on real queue messages.

Duplicate, stale and out-of-order messages; a zombie worker whose lease ran out; partial batch
failures; a poison message ending in the DLQ with its thread failed; bad input of every kind.
All on moto in one process: the zombie case is a deterministic interleaving (the second worker
runs inside the first one's node, while moto's SQS clock is moved past the visibility timeout),
not two racing threads — moto's in-memory services are not safe under concurrent threads. Real
concurrent workers are in `test_worker_processes.py`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from durable_graph.backends.aws import lambda_worker
from durable_graph.backends.aws.local_poller import EventSourcePoller, LocalLambdaContext
from durable_graph.backends.aws.sqs_queue import dedup_token, sqs_id
from durable_graph.checkpoint import Task
from durable_graph.clock import ManualClock
from durable_graph.errors import InvalidInput, PayloadTooLarge, SerializationError
from durable_graph.followups import messages_for
from durable_graph.ports.transition_queue import TransitionMessage
from functions.worker.handler import handler
from tests.aws import graphs
from tests.aws.backend_factory import sqs_time_follows
from tests.aws.conftest import AwsWorld
from tests.aws.faults import Fault, checkpoint_put
from tests.aws.resources import stored_row


def table_items(world: AwsWorld) -> list[dict[str, Any]]:
    table = world.resources.settings.table_name
    return list(world.clients.dynamodb.scan(TableName=table).get("Items", []))


def send_raw(world: AwsWorld, body: str, *, group: str = "g", dedup: str | None = None) -> None:
    world.clients.sqs.send_message(
        QueueUrl=world.resources.settings.queue_url,
        MessageBody=body,
        MessageGroupId=group,
        MessageDeduplicationId=dedup or hashlib.sha256(body.encode()).hexdigest(),
    )


def redeliver(world: AwsWorld, message: TransitionMessage, tag: str) -> None:
    """The same transition again, as after the five-minute deduplication window."""
    send_raw(
        world,
        message.model_dump_json(),
        group=sqs_id(message.group_id),
        dedup=f"{dedup_token(message)[:40]}-{tag}",
    )


def dlq_bodies(world: AwsWorld) -> list[tuple[str, dict[str, Any]]]:
    found = []
    response = world.clients.sqs.receive_message(
        QueueUrl=world.resources.settings.dlq_url or "",
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        VisibilityTimeout=0,
    )
    for raw in response.get("Messages", []):
        found.append((raw["Body"], dict(raw.get("MessageAttributes", {}))))
    return found


# ---------------------------------------------------------------- duplicates and ordering


def test_duplicate_stale_and_out_of_order_messages_change_nothing(chain: AwsWorld) -> None:
    """Given a completed thread, when every one of its transitions is delivered again, newest
    first, plus a message for a task its step never scheduled, then each is acknowledged as a
    duplicate or stale, nothing is written, and the queue ends empty."""
    rt = chain.rt
    start = rt.graph.start({}, thread_id="c1")
    sent = messages_for(start, keys=None)
    chain.drain()
    for checkpoint in chain.chain("c1")[1:-1]:
        sent.extend(messages_for(checkpoint, keys=None))
    before = table_items(chain)
    assert chain.head("c1").status == "completed"

    for index, message in enumerate(reversed(sent)):
        redeliver(chain, message, f"late{index}")
    # A task the head step never scheduled (the head is step 3, completed: nothing is next).
    stale = TransitionMessage(
        thread_id="c1", step=3, task=Task(id="3:c", node="c"), graph=start.graph
    )
    redeliver(chain, stale, "stale")
    worker = lambda_worker.worker()
    kinds = []
    for raw in chain.clients.sqs.receive_message(
        QueueUrl=chain.resources.settings.queue_url,
        MaxNumberOfMessages=10,
        MessageSystemAttributeNames=["All"],
    ).get("Messages", []):
        count = int(raw["Attributes"]["ApproximateReceiveCount"])
        result = worker.process(raw["Body"], receipt=raw["ReceiptHandle"], receive_count=count)
        kinds.append(result.kind)
        chain.clients.sqs.delete_message(
            QueueUrl=chain.resources.settings.queue_url, ReceiptHandle=raw["ReceiptHandle"]
        )
    # The carried copies (first receive) re-run their node and lose the conditional write;
    # the plain ones are recognised from the stored chain.
    assert sorted(kinds) == ["duplicate", "duplicate", "duplicate", "stale"]
    assert table_items(chain) == before
    assert chain.queue_depth() == 0


def test_same_transition_sent_twice_is_delivered_once(chain: AwsWorld) -> None:
    """Given a transition sent twice through the queue adapter, then SQS FIFO deduplication
    delivers it once."""
    rt = chain.rt
    start = rt.graph.start({}, thread_id="c2")
    rt.backend.queue.send(messages_for(start, keys=None))
    poller = chain.drain()
    assert poller.stats.records == 3  # a, b, c: the second copy of the first never arrived
    assert chain.head("c2").values["log"] == ["a", "b", "c"]


def test_zombie_worker_whose_lease_expired_loses_its_late_commit(
    aws_factory: Callable[..., AwsWorld], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a node slower than the message's visibility timeout, when the timeout passes
    while it runs and a second worker takes the message and commits, then the first worker's
    late commit loses (duplicate), the stored step is the second worker's, and the side effect
    ran once."""
    monkeypatch.setenv("DG_EFFECTS", str(tmp_path / "effects"))
    world = aws_factory(graph="tests.aws.graphs:slow_graph")
    clock = ManualClock()
    graphs.RUNS.clear()
    worker = lambda_worker.worker()
    url = world.resources.settings.queue_url
    world.rt.graph.start({}, thread_id="z1")
    outcomes: dict[str, str] = {}

    def receive(visibility: int) -> dict[str, Any]:
        messages = world.clients.sqs.receive_message(
            QueueUrl=url, VisibilityTimeout=visibility, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        assert len(messages) == 1
        return dict(messages[0])

    def second_worker() -> None:
        clock.advance(31)  # the first worker's 30 s lease ends while its node still runs
        raw = receive(30)
        count = int(raw["Attributes"]["ApproximateReceiveCount"])
        outcomes["second"] = worker.process(
            raw["Body"], receipt=raw["ReceiptHandle"], receive_count=count
        ).kind
        world.clients.sqs.delete_message(QueueUrl=url, ReceiptHandle=raw["ReceiptHandle"])

    with sqs_time_follows(clock):
        graphs.SLOW_HOOK.append(second_worker)
        first = receive(30)
        outcomes["first"] = worker.process(
            first["Body"], receipt=first["ReceiptHandle"], receive_count=1
        ).kind
        world.drain()

    assert outcomes == {"second": "committed", "first": "duplicate"}
    stored = world.rt.backend.checkpoints.get_checkpoint("z1", 1)
    assert stored is not None and stored.values["runs"] == [2]
    assert world.head("z1").status == "completed"
    assert (tmp_path / "effects" / "charges.log").read_text() == "run 1\n"


# ---------------------------------------------------------------- failures


def test_partial_batch_failure_retries_only_the_failed_record(chain: AwsWorld) -> None:
    """Given a batch holding the first transition of three threads, when one thread's write
    fails transiently, then only that record is reported failed, the others are deleted, and
    the failed one succeeds when redelivered."""
    rt = chain.rt
    for name in ("p1", "p2", "p3"):
        rt.graph.start({}, thread_id=name)
    throttled = Fault(
        "before-call.dynamodb.PutItem",
        lambda p: checkpoint_put(p) and p["Item"]["pk"]["S"] == "thread#p2",
        error=lambda: _throttled(),
    )
    throttled.install(rt.clients.dynamodb)
    poller = EventSourcePoller(chain.clients.sqs, rt.settings.queue_url, handler, batch_size=10)
    messages = poller.receive()
    assert len(messages) == 3
    response = handler(poller.event_for(messages), LocalLambdaContext())
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    p2 = {m["MessageId"] for m in messages if '"thread_id":"p2"' in m["Body"]}
    assert failed == p2
    assert [chain.head(t).step for t in ("p1", "p2", "p3")] == [1, 0, 1]

    for m in messages:
        if m["MessageId"] not in failed:
            chain.clients.sqs.delete_message(
                QueueUrl=rt.settings.queue_url, ReceiptHandle=m["ReceiptHandle"]
            )
    for m in messages:
        if m["MessageId"] in failed:
            chain.clients.sqs.change_message_visibility(
                QueueUrl=rt.settings.queue_url,
                ReceiptHandle=m["ReceiptHandle"],
                VisibilityTimeout=0,
            )
    chain.drain(batch_size=10)
    assert [chain.head(t).status for t in ("p1", "p2", "p3")] == ["completed"] * 3


def _throttled() -> BaseException:
    from botocore.exceptions import ClientError

    return ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
        "PutItem",
    )


def test_poison_message_ends_in_the_dlq_with_the_thread_failed(
    aws_factory: Callable[..., AwsWorld],
) -> None:
    """Given a task that fails transiently on every attempt and a redrive policy of three
    receives, when the queue is drained, then the thread is failed with the reason and the
    receive count recorded, the message sits in the DLQ, and the queue is empty."""
    world = aws_factory(graph="tests.aws.graphs:poison_graph", max_receives=3)
    world.rt.graph.start({}, thread_id="poison-1")
    poller = world.drain()

    # Three receives, each failing its only record (powertools then fails the invocation as a
    # whole, which SQS treats the same way: the message comes back).
    assert poller.stats.records == 3
    assert poller.stats.failed_records + poller.stats.crashed_invocations == 3
    head = world.head("poison-1")
    assert head.status == "failed" and head.error is not None
    assert "upstream service unavailable" in head.error.message
    assert "after 3 receives" in head.error.message
    assert world.rt.backend.checkpoints.get_thread("poison-1").status == "failed"  # type: ignore[union-attr]
    parked = dlq_bodies(world)
    assert [json.loads(body)["thread_id"] for body, _ in parked] == ["poison-1"]
    assert world.queue_depth() == 0


# ---------------------------------------------------------------- bad input


def test_malformed_bodies_are_not_retried_and_store_nothing(chain: AwsWorld) -> None:
    """Given bodies that are not transition messages (not JSON; JSON naming no thread), then
    each is processed once (not retried), parked in the DLQ with the reason, and nothing is
    stored."""
    send_raw(chain, "this is not json")
    send_raw(chain, json.dumps({"hello": "world"}), group="g2")
    poller = chain.drain(batch_size=10)

    assert poller.stats.failed_records == 0 and poller.stats.records == 2
    assert table_items(chain) == []
    parked = {body: attrs["reason"]["StringValue"] for body, attrs in dlq_bodies(chain)}
    assert "body is not JSON" in parked["this is not json"]
    assert "malformed transition message" in parked[json.dumps({"hello": "world"})]
    assert chain.queue_depth() == 0


def test_malformed_body_naming_a_thread_fails_that_thread(chain: AwsWorld) -> None:
    """Given a running thread and a garbled message that still names it, then the thread is
    failed with the reason (it cannot be continued from that message) and the chain verifies."""
    rt = chain.rt
    rt.graph.start({}, thread_id="c5")
    send_raw(chain, json.dumps({"thread_id": "c5", "step": "zero"}), group="c5")
    worker = lambda_worker.worker()
    result = worker.process(
        json.dumps({"thread_id": "c5", "step": "zero"}), receipt="r", receive_count=1
    )
    assert result.kind == "malformed"
    head = chain.head("c5")
    assert head.status == "failed" and head.error is not None
    assert "malformed transition message" in head.error.message


@pytest.mark.parametrize("problem", ["unknown node", "graph version"])
def test_message_that_can_never_run_fails_its_thread_with_the_reason(
    chain: AwsWorld, problem: str
) -> None:
    """Given a running thread, when a message names a node the graph lacks, or was produced by
    another version of the graph, then the thread is failed with that reason (not retried)."""
    start = chain.rt.graph.start({}, thread_id="c6")
    [message] = messages_for(start, keys=None)
    if problem == "unknown node":
        bad = message.model_copy(update={"task": Task(id="0:zz", node="zz")})
    else:
        other = start.graph.model_copy(update={"version": "0ld"})
        bad = message.model_copy(update={"graph": other})
    result = lambda_worker.worker().process(bad.model_dump_json(), receipt="r", receive_count=1)
    assert result.kind == "failed_thread"
    head = chain.head("c6")
    assert head.status == "failed" and head.error is not None
    assert ("'zz'" if problem == "unknown node" else "version 0ld") in head.error.message
    assert chain.rt.backend.checkpoints.get_thread("c6").status == "failed"  # type: ignore[union-attr]


def test_message_for_an_unknown_thread_stores_nothing(chain: AwsWorld) -> None:
    """Given a well-formed message naming a thread that does not exist, then it is settled
    (not retried) and nothing is stored."""
    graph_ref = chain.rt.graph.engine().graph
    ghost = TransitionMessage(
        thread_id="ghost", step=4, task=Task(id="4:b", node="b"), graph=graph_ref
    )
    redeliver(chain, ghost, "ghost")
    poller = chain.drain()
    assert poller.stats.records == 1 and poller.stats.failed_records == 0
    assert table_items(chain) == []


def test_state_over_the_size_limit_and_unserialisable_input_store_nothing(
    aws_factory: Callable[..., AwsWorld],
) -> None:
    """Given one value over the backend's single-value maximum, or input that is not JSON, then
    start refuses it with a clear error and neither the table nor the queue changes; a node
    whose output is over that maximum fails its thread with the reason, keeping the previous
    state. (Many small values are no longer too big: see the test below.)"""
    world = aws_factory(graph="tests.aws.graphs:bulky_graph")
    world.rt.backend.max_value_bytes = 100_000
    app = world.rt.graph
    with pytest.raises(PayloadTooLarge, match="100000-byte maximum"):
        app.start({"items": [f"x{i:06d}" for i in range(60_000)]}, thread_id="big-1")
    with pytest.raises(PayloadTooLarge, match="extra: one change"):  # items alone would fit
        app.start({"items": ["x" * 9] * 5_000, "extra": "y" * 150_000}, thread_id="big-1")
    bucket = world.resources.settings.bucket
    assert world.clients.s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    with pytest.raises((SerializationError, InvalidInput), match="extra"):
        app.start({"extra": {1, 2, 3}}, thread_id="bad-1")
    with pytest.raises(SerializationError, match="finite"):
        app.start({"extra": float("nan")}, thread_id="bad-2")
    assert table_items(world) == []
    assert world.queue_depth() == 0

    app.start({}, thread_id="bulky-1")
    world.drain()
    head = world.head("bulky-1")
    assert head.status == "failed" and head.error is not None
    assert "100000-byte maximum" in head.error.message
    assert head.values["items"] == []


def test_a_state_far_over_the_item_limit_is_checkpointed_as_chunks(
    aws_factory: Callable[..., AwsWorld],
) -> None:
    """Given 60,000 small strings as input and a node that writes 60,000 more (each about
    700 KB of JSON, twice DynamoDB's item limit), then both steps commit: each change goes to
    S3 as one chunk, every DynamoDB item stays small, and the state reads back whole."""
    world = aws_factory(graph="tests.aws.graphs:bulky_graph")
    app = world.rt.graph
    app.start({"items": [f"x{i:06d}" for i in range(60_000)]}, thread_id="big-2")
    world.drain()
    head = world.head("big-2")
    assert head.status == "completed" and head.values["items"][-1] == "item-059999"
    assert len(head.values["items"]) == 60_000
    assert all(len(stored_row(item)) < 8_000 for item in table_items(world) if "body" in item)


def _garble_first_transition(world: AwsWorld, thread_id: str, body: str, group: str) -> None:
    """Start `thread_id`, then swap its queued transition for `body` sent in `group`."""
    world.rt.graph.start({}, thread_id=thread_id)
    url = world.resources.settings.queue_url
    for raw in world.clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        world.clients.sqs.delete_message(QueueUrl=url, ReceiptHandle=raw["ReceiptHandle"])
    send_raw(world, body, group=group)


@pytest.mark.parametrize(
    ("body", "group"),
    [("this is not json", "c7"), ("{", "c7:1:b>c:0"), (json.dumps({"step": 1}), "c7")],
)
def test_unparseable_body_fails_the_thread_its_group_names(
    chain: AwsWorld, body: str, group: str
) -> None:
    """Given a running thread whose queued transition is garbage that names no thread, when the
    worker Lambda receives it, then the thread is recovered from the MessageGroupId (the thread,
    or `thread:task` for a parallel task), failed with the reason, and the body is parked in the
    DLQ: nothing is retried and no thread is left `running` with nothing queued."""
    _garble_first_transition(chain, "c7", body, group)
    chain.rt.graph.start({}, thread_id="c9")  # a healthy thread beside it
    poller = chain.drain(batch_size=10)

    assert poller.stats.failed_records == 0
    head = chain.head("c7")
    assert head.status == "failed" and head.error is not None
    assert "malformed transition message" in head.error.message
    assert chain.head("c9").status == "completed"
    assert [body for body, _ in dlq_bodies(chain)] == [body]
    assert chain.queue_depth() == 0


def test_queue_adapter_sets_poison_aside_for_a_local_worker(chain: AwsWorld) -> None:
    """Given the SQS adapter drained by a `Worker` (local workers, benchmarks), when a garbled
    transition is received, then it is parked in the DLQ and deleted, the worker fails the
    thread its group names, and a healthy thread completes."""
    from durable_graph.worker import Worker

    _garble_first_transition(chain, "c10", "garbage{", "c10")
    chain.rt.graph.start({}, thread_id="c11")
    worker = Worker(chain.rt.backend, chain.rt.engine_for, visibility_timeout=5)
    stats = worker.run(until_idle=True, max_seconds=60, poll_interval=0)

    assert stats.poisoned == 1 and stats.failed_threads == 1
    head = chain.head("c10")
    assert head.status == "failed" and head.error is not None
    assert "body is not JSON" in head.error.message
    assert chain.head("c11").status == "completed"
    assert [body for body, _ in dlq_bodies(chain)] == ["garbage{"]
    assert chain.queue_depth() == 0
