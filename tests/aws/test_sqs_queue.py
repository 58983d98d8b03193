"""The SQS queue adapter beyond the conformance suite: ids SQS accepts, the claim check for
large bodies, malformed bodies, and what it cannot do (receive one thread's messages)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from moto import mock_aws

from durable_graph.backends.aws.factory import AwsClients
from durable_graph.backends.aws.s3_payloads import S3PayloadStore
from durable_graph.backends.aws.sqs_queue import (
    MalformedMessage,
    SqsTransitionQueue,
    sqs_id,
    thread_candidates,
)
from durable_graph.checkpoint import Task
from durable_graph.ports.transition_queue import TransitionMessage
from tests.aws.resources import Resources, clients, create_resources
from tests.helpers import GRAPH


@pytest.fixture
def queue() -> Iterator[tuple[SqsTransitionQueue, AwsClients, Resources]]:
    with mock_aws():
        aws = clients()
        resources = create_resources(aws)
        payloads = S3PayloadStore(aws.s3, resources.settings.bucket)
        adapter = SqsTransitionQueue(
            aws.sqs, resources.settings.queue_url, payloads=payloads, body_limit=4096
        )
        yield adapter, aws, resources


def message(thread_id: str, arg: object = None) -> TransitionMessage:
    return TransitionMessage(
        thread_id=thread_id, step=0, task=Task(id="0:a", node="a", arg=arg), graph=GRAPH
    )


def test_any_thread_id_makes_valid_sqs_ids(
    queue: tuple[SqsTransitionQueue, AwsClients, Resources],
) -> None:
    """Given thread ids SQS would refuse as a group id (spaces, non-ASCII, > 128 chars), then
    they are hashed, stably, and the messages go through."""
    adapter, _, _ = queue
    odd = ["réunion du lundi", "x" * 200, "tab\there"]
    assert sqs_id("plain-id:0:a") == "plain-id:0:a"
    assert sqs_id(odd[0]) == sqs_id(odd[0]) != odd[0]
    adapter.send([message(t) for t in odd])
    got = adapter.receive(max_messages=10)
    assert sorted(d.message.thread_id for d in got) == sorted(odd)


def test_large_bodies_travel_by_claim_check(
    queue: tuple[SqsTransitionQueue, AwsClients, Resources],
) -> None:
    """Given a message whose body exceeds the limit, then SQS carries only a ref to the body in
    S3, and the receiver gets the whole message back."""
    adapter, aws, resources = queue
    big = message("claim-1", arg={"text": "z" * 10_000})
    adapter.send([big])
    raw = aws.sqs.receive_message(QueueUrl=resources.settings.queue_url, VisibilityTimeout=0)
    body = raw["Messages"][0]["Body"]
    assert len(body) < 1000 and "$claim_check" in json.loads(body)
    [delivery] = adapter.receive()
    assert delivery.message == big


def test_malformed_bodies_and_thread_filters_are_refused_clearly(
    queue: tuple[SqsTransitionQueue, AwsClients, Resources],
) -> None:
    adapter, _, _ = queue
    with pytest.raises(MalformedMessage, match="not JSON"):
        adapter.parse("{nope", receipt="r", receive_count=1)
    with pytest.raises(MalformedMessage, match="step") as caught:
        adapter.parse(json.dumps({"thread_id": "t9", "step": "x"}), receipt="r", receive_count=1)
    assert caught.value.thread_id == "t9"
    with pytest.raises(NotImplementedError):
        adapter.receive(thread_id="t9")


def test_thread_candidates_of_a_group_id() -> None:
    """A group id is the thread, or `thread:task` (task ids start with `<step>:`); a thread id
    may hold ':' itself, so each split before a task id is a candidate, longest first."""
    assert thread_candidates(None) == []
    assert thread_candidates("t1") == ["t1"]
    assert thread_candidates("t1:3:b") == ["t1:3:b", "t1"]
    assert thread_candidates("a:2:b:3:x>y:0") == ["a:2:b:3:x>y:0", "a:2:b", "a"]
    assert thread_candidates("12:3:b") == ["12:3:b", "12"]
