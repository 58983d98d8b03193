"""Least privilege in the synthesised stack: each function's role against the permission table
written out here, deletes for the erasers alone, payload objects under their prefix only.
"""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Template

from durable_graph.backends.aws import names
from infra.components.functions import (
    API,
    DEAD_LETTERS,
    S3_TRIGGER,
    SPECS,
    SWEEPER,
    WORKER,
    FunctionSpec,
)
from tests.infra.template_queries import (
    actions_of,
    as_list,
    bucket,
    function_of,
    joined_parts,
    logical_id,
    queue,
    statements_of,
)

# The permission table of infra/stack.py, written out independently: every action each function
# may perform. Anything more (or less) is a change to review.
TABLE_READ = {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"}
TABLE_WRITE = {"dynamodb:PutItem", "dynamodb:UpdateItem"}
LOGS_AND_TRACES = {
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}
SEND = {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
CONSUME = {
    "sqs:ReceiveMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueUrl",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
}
SECRET_READ = {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
SIGN = {"kms:Sign", "kms:Verify", "kms:GetPublicKey"}

# Erasure's: delete every version of a payload object, after listing that key's versions.
ERASE = {"s3:DeleteObject", "s3:DeleteObjectVersion", "s3:ListBucketVersions"}
EXPECTED_ACTIONS: dict[str, set[str]] = {
    WORKER.folder: LOGS_AND_TRACES
    | TABLE_READ
    | TABLE_WRITE
    | {"s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:GetObjectVersion"}
    | SEND
    | CONSUME
    | {"sns:Publish"}
    | SECRET_READ
    | SIGN
    | {"ses:SendEmail"},
    API.folder: LOGS_AND_TRACES
    | TABLE_READ
    | TABLE_WRITE
    | {"s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:GetObjectVersion"}
    | SEND
    | {"sns:Publish"}
    | SECRET_READ
    | SIGN
    | ERASE,  # POST /threads/{id}/erase
    S3_TRIGGER.folder: LOGS_AND_TRACES
    | TABLE_READ
    | TABLE_WRITE
    | {"s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:GetObjectVersion"}
    | SEND,
    SWEEPER.folder: LOGS_AND_TRACES
    | TABLE_READ
    | TABLE_WRITE
    | {"dynamodb:DeleteItem"}  # leftover items only (test_only_the_sweeper_deletes_...)
    | {"s3:GetObject", "s3:ListBucket"}
    | SEND
    | CONSUME
    | SIGN
    | ERASE,  # the retention job, and lost appends' leftover chunks
    # Reads heads (and claim-checked bodies), writes failures and re-drive records, re-sends.
    DEAD_LETTERS.folder: LOGS_AND_TRACES
    | TABLE_READ
    | TABLE_WRITE
    | {"s3:GetObject", "s3:ListBucket"}
    | SEND
    | CONSUME
    | SIGN,
}
FORBIDDEN_ACTIONS = {"dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:Scan"}
ERASERS = {API.folder, SWEEPER.folder}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.folder)
def test_function_role_grants_exactly_the_permission_table(
    template: Template, spec: FunctionSpec
) -> None:
    actions = actions_of(template, spec)

    assert actions == EXPECTED_ACTIONS[spec.folder]
    assert not actions & (FORBIDDEN_ACTIONS - EXPECTED_ACTIONS[spec.folder])
    assert bool(actions & ERASE) == (spec.folder in ERASERS)
    assert all("*" not in action for action in actions)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.folder)
def test_only_xray_is_granted_on_every_resource(template: Template, spec: FunctionSpec) -> None:
    statements = statements_of(template, spec)

    unscoped = {a for s in statements if s["Resource"] == "*" for a in as_list(s["Action"])}

    assert unscoped == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.folder)
def test_payload_objects_are_reachable_only_under_the_payload_prefix(
    template: Template, spec: FunctionSpec
) -> None:
    """Objects of the payload bucket: under the payload prefix, or under the queue bodies'
    prefix (the claim check), where no function may delete (their lifecycle rule does)."""
    payloads_id, _ = bucket(template, "Payloads")
    payload_arn = {"Fn::GetAtt": [payloads_id, "Arn"]}

    for statement in statements_of(template, spec):
        for resource in as_list(statement["Resource"]):
            if resource == payload_arn and statement["Action"] == "s3:ListBucketVersions":
                prefixes = statement["Condition"]["StringLike"]["s3:prefix"]
                assert as_list(prefixes) == [f"{names.PAYLOAD_PREFIX}*"]
            elif resource == payload_arn:
                assert as_list(statement["Action"]) == ["s3:ListBucket"]
            elif isinstance(resource, dict) and payload_arn in joined_parts(resource):
                tail = resource["Fn::Join"][1][-1]
                assert tail in (f"/{names.PAYLOAD_PREFIX}*", f"/{names.MESSAGE_PREFIX}*")
                if tail == f"/{names.MESSAGE_PREFIX}*":
                    assert set(as_list(statement["Action"])) <= {"s3:GetObject", "s3:PutObject"}


def test_payload_deletes_are_the_erasers_alone_and_under_the_payload_prefix(
    template: Template,
) -> None:
    """Erasure's delete rights: the API (its IAM-only erase route) and the sweeper (retention),
    on payload objects only, and only they are told they may (they delete the chunks of a step
    that lost its append, `orphans.py`; the others leave them to the sweeper); no function may
    delete an upload."""
    payloads_id, _ = bucket(template, "Payloads")
    for spec in SPECS:
        deletes = [
            statement
            for statement in statements_of(template, spec)
            if {"s3:DeleteObject", "s3:DeleteObjectVersion"} & set(as_list(statement["Action"]))
        ]
        told = function_of(template, spec)[1]["Properties"]["Environment"]["Variables"]
        if spec.folder not in ERASERS:
            assert deletes == []
            assert names.GRANT_ENV_PAYLOAD_DELETES not in told  # a lost step's chunks stay
            continue
        assert told[names.GRANT_ENV_PAYLOAD_DELETES] == "true"
        (statement,) = deletes
        (resource,) = as_list(statement["Resource"])
        assert {"Fn::GetAtt": [payloads_id, "Arn"]} in joined_parts(resource)
        assert resource["Fn::Join"][1][-1] == f"/{names.PAYLOAD_PREFIX}*"


def test_only_the_sweeper_deletes_table_items_and_only_leftovers(template: Template) -> None:
    """The one table delete in the stack: the sweeper forgetting a leftover it dealt with
    (`durable_graph.leftovers`), on the table alone and held by `dynamodb:LeadingKeys` to the
    leftovers partition, so no checkpoint, thread head or record can be deleted; the functions
    that leave leftovers do it with the `PutItem` they have."""
    table_id = logical_id(template, "AWS::DynamoDB::Table")
    for spec in SPECS:
        deletes = [
            statement
            for statement in statements_of(template, spec)
            if "dynamodb:DeleteItem" in as_list(statement["Action"])
        ]
        if spec is not SWEEPER:
            assert deletes == []
            continue
        (statement,) = deletes
        assert as_list(statement["Action"]) == ["dynamodb:DeleteItem"]
        assert as_list(statement["Resource"]) == [{"Fn::GetAtt": [table_id, "Arn"]}]
        assert statement["Condition"] == {
            "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [names.LEFTOVERS_PARTITION]}
        }
    for spec in (WORKER, S3_TRIGGER, DEAD_LETTERS):  # they leave leftovers: PutItem on the table
        assert "dynamodb:PutItem" in actions_of(template, spec)


@pytest.mark.parametrize(
    ("spec", "sends_to", "receives_from"),
    [
        (WORKER, {"Transitions", "DeadLetters"}, {"Transitions"}),
        (API, {"Transitions"}, set()),
        (S3_TRIGGER, {"Transitions", "FailedStarts"}, set()),
        (SWEEPER, {"Transitions"}, {"DeadLetters"}),
        (DEAD_LETTERS, {"Transitions"}, {"DeadLetters"}),
    ],
    ids=lambda value: value.folder if isinstance(value, FunctionSpec) else "",
)
def test_queue_access_per_function(
    template: Template, spec: FunctionSpec, sends_to: set[str], receives_from: set[str]
) -> None:
    queue_names = {
        queue(template, name)[0]: name for name in ("Transitions", "DeadLetters", "FailedStarts")
    }

    def queues_with(action: str) -> set[str]:
        return {
            queue_names[resource["Fn::GetAtt"][0]]
            for statement in statements_of(template, spec)
            if action in as_list(statement["Action"])
            for resource in as_list(statement["Resource"])
            if isinstance(resource, dict) and resource.get("Fn::GetAtt", [""])[0] in queue_names
        }

    assert queues_with("sqs:SendMessage") == sends_to
    assert queues_with("sqs:ReceiveMessage") == receives_from


def test_no_role_uses_an_aws_managed_policy_except_cdk_internals(template: Template) -> None:
    roles = template.find_resources("AWS::IAM::Role")

    with_managed = sorted(k for k, v in roles.items() if v["Properties"].get("ManagedPolicyArns"))

    assert all(
        k.startswith(("BucketNotificationsHandler", "ApiRestApiCloudWatchRole"))
        for k in with_managed
    )
