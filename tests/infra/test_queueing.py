"""The queues in the synthesised stack: the FIFO transition queue and its dead letters, TLS
only, and the functions that consume them with partial batch failures.
"""

from __future__ import annotations

from aws_cdk.assertions import Template

from infra.components.functions import DEAD_LETTERS, S3_TRIGGER, WORKER
from infra.components.queueing import MAX_RECEIVE_COUNT, VISIBILITY_TIMEOUT_FACTOR
from tests.infra.template_queries import Resource, function_of, only, queue


def test_transition_queue_is_fifo_with_explicit_deduplication(template: Template) -> None:
    _, transitions = queue(template, "Transitions")
    dlq_id, dlq = queue(template, "DeadLetters")

    properties = transitions["Properties"]
    assert properties["FifoQueue"] is True
    assert properties["ContentBasedDeduplication"] is False
    assert properties["SqsManagedSseEnabled"] is True
    assert properties["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": MAX_RECEIVE_COUNT,
    }
    assert MAX_RECEIVE_COUNT == 5
    assert dlq["Properties"]["FifoQueue"] is True
    assert dlq["Properties"]["ContentBasedDeduplication"] is False


def test_visibility_timeout_is_six_times_the_worker_timeout(template: Template) -> None:
    _, transitions = queue(template, "Transitions")
    _, worker = function_of(template, WORKER)

    visibility = transitions["Properties"]["VisibilityTimeout"]

    assert VISIBILITY_TIMEOUT_FACTOR >= 6
    assert visibility >= 6 * worker["Properties"]["Timeout"]


def test_every_queue_refuses_plain_http(template: Template) -> None:
    policies = template.find_resources("AWS::SQS::QueuePolicy")
    queues = template.find_resources("AWS::SQS::Queue")

    protected: set[str] = set()
    for policy in policies.values():
        statement = policy["Properties"]["PolicyDocument"]["Statement"][0]
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        protected.update(q["Ref"] for q in policy["Properties"]["Queues"])
    assert protected == set(queues)


def test_worker_consumes_transitions_with_partial_batch_failures(template: Template) -> None:
    transitions_id, _ = queue(template, "Transitions")
    worker_id, _ = function_of(template, WORKER)

    mapping = mapping_of(template, worker_id)

    assert mapping["Properties"] == {
        "BatchSize": 10,
        "EventSourceArn": {"Fn::GetAtt": [transitions_id, "Arn"]},
        "FunctionName": {"Ref": worker_id},
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
    }


def mapping_of(template: Template, function_id: str) -> Resource:
    """The one event source mapping that feeds the function `function_id`."""
    mappings = template.find_resources("AWS::Lambda::EventSourceMapping")
    _, mapping = only(
        {
            key: value
            for key, value in mappings.items()
            if value["Properties"]["FunctionName"] == {"Ref": function_id}
        }
    )
    return mapping


def test_dlq_function_consumes_the_dlq_with_partial_batch_failures(template: Template) -> None:
    """Every dead-lettered transition reaches the `dlq` function, which reports what it could
    not settle (so only that comes back)."""
    dlq_id, dlq = queue(template, "DeadLetters")
    function_id, function = function_of(template, DEAD_LETTERS)

    mapping = mapping_of(template, function_id)

    assert function["Properties"]["Handler"] == "dlq.handler.handler"
    assert mapping["Properties"] == {
        "BatchSize": 10,
        "EventSourceArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "FunctionName": {"Ref": function_id},
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
    }
    # Lambda refuses an SQS source whose visibility timeout is below the function's timeout.
    assert dlq["Properties"]["VisibilityTimeout"] >= DEAD_LETTERS.timeout_seconds
    assert len(template.find_resources("AWS::Lambda::EventSourceMapping")) == 2


def test_failed_s3_starts_are_kept_in_a_dead_letter_queue(template: Template) -> None:
    failed_id, _ = queue(template, "FailedStarts")

    _, s3_trigger = function_of(template, S3_TRIGGER)

    assert s3_trigger["Properties"]["DeadLetterConfig"] == {
        "TargetArn": {"Fn::GetAtt": [failed_id, "Arn"]}
    }
