"""The stack, synthesised offline exactly as `cdk synth` builds it (cdk-nag included).

Given the app from `infra.app.build_app` with cdk.json's context, when it is synthesised once
for this module, then the template has the resources, wiring and permissions the design needs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Annotations, Match, Template
from cdk_nag import AwsSolutionsChecks

from durable_graph.backends.aws import names
from infra.app import build_app
from infra.components.api import ROUTES, STAGE_NAME
from infra.components.explorer_auth import EXPLORER_ROUTES
from infra.components.functions import (
    API,
    DEAD_LETTERS,
    S3_TRIGGER,
    SPECS,
    SWEEPER,
    WORKER,
    FunctionSpec,
)
from infra.components.queueing import MAX_RECEIVE_COUNT, VISIBILITY_TIMEOUT_FACTOR
from infra.components.signing import LEDGER_KEY_ENV
from infra.stack import DEFAULT_GRAPH, DurableGraphStack, StackConfig

Resource = dict[str, Any]

# Every function's environment; the explorer's sign-in keys are the api function's alone
# (test_explorer_auth.py).
ENV_KEYS = sorted(
    value
    for key, value in vars(names).items()
    if key.startswith("ENV_") and not key.startswith("ENV_EXPLORER_")
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


# --- fixtures: one synthesis for the whole module ------------------------------------------


# Synthesis without building the layer (pip for arm64 on every test run); the layer's build is
# tested in test_layer_bundling.py. Everything else is what `cdk synth` produces.
NO_BUNDLING: dict[str, Any] = {"aws:cdk:bundling-stacks": []}
MAIL_FROM = "agent@example.com"


@pytest.fixture(scope="module")
def app_and_stack() -> tuple[App, DurableGraphStack]:
    """The stack as deployed for the seed example: `-c mail_from=...` lets it send email."""
    return build_app({**NO_BUNDLING, "mail_from": MAIL_FROM})


@pytest.fixture(scope="module")
def template(app_and_stack: tuple[App, DurableGraphStack]) -> Template:
    return Template.from_stack(app_and_stack[1])


# --- helpers ---------------------------------------------------------------------------------


def only(resources: Mapping[str, Any]) -> tuple[str, Resource]:
    assert len(resources) == 1, sorted(resources)
    logical_id, resource = next(iter(resources.items()))
    return logical_id, resource


def function_of(template: Template, spec: FunctionSpec) -> tuple[str, Resource]:
    return only(
        template.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": spec.handler}})
    )


def statements_of(template: Template, spec: FunctionSpec) -> list[Resource]:
    _, function = function_of(template, spec)
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    policies = template.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role_id}]}}
    )
    assert policies, f"no policy attached to {role_id}"
    return [
        statement
        for policy in policies.values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def actions_of(template: Template, spec: FunctionSpec) -> set[str]:
    return {a for s in statements_of(template, spec) for a in as_list(s["Action"])}


def joined_parts(value: Resource) -> list[Any]:
    """The parts of an `Fn::Join`, or nothing for any other intrinsic."""
    join = value.get("Fn::Join")
    return list(join[1]) if join else []


def logical_id(template: Template, resource_type: str) -> str:
    return only(template.find_resources(resource_type))[0]


def queue(template: Template, construct_id: str) -> tuple[str, Resource]:
    queues = template.find_resources("AWS::SQS::Queue")
    return only({k: v for k, v in queues.items() if k.startswith(f"Queueing{construct_id}")})


def bucket(template: Template, construct_id: str) -> tuple[str, Resource]:
    buckets = template.find_resources("AWS::S3::Bucket")
    return only({k: v for k, v in buckets.items() if k.startswith(f"Storage{construct_id}")})


def resource_paths(template: Template) -> dict[str, str]:
    """Logical id of each API Gateway resource (and of the root) -> its full path."""
    resources = template.find_resources("AWS::ApiGateway::Resource")
    paths: dict[str, str] = {}

    def path_of(resource_id: str) -> str:
        if resource_id not in paths:
            properties = resources[resource_id]["Properties"]
            parent = properties["ParentId"]
            prefix = "" if "Fn::GetAtt" in parent else path_of(parent["Ref"])
            paths[resource_id] = f"{prefix}/{properties['PathPart']}"
        return paths[resource_id]

    for resource_id in resources:
        path_of(resource_id)
    return paths


# --- cdk-nag ---------------------------------------------------------------------------------


def test_cdk_nag_reports_no_unacknowledged_finding(
    app_and_stack: tuple[App, DurableGraphStack],
) -> None:
    app, stack = app_and_stack

    report = AwsSolutionsChecks().validate_scope(app)

    findings = [
        f"{v.severity} {v.rule_name} at {[r.construct_path for r in v.violating_resources]}"
        for v in report.violations
    ]
    assert findings == []
    assert report.success
    errors = Annotations.from_stack(stack).find_error(
        "*", Match.string_like_regexp("AwsSolutions-.*")
    )
    assert errors == []


def test_synthesis_fails_on_an_unacknowledged_finding() -> None:
    app, stack = build_app(NO_BUNDLING)
    s3.Bucket(stack, "Careless")  # no TLS enforcement, no access logs

    with pytest.raises(RuntimeError, match=r"(?s)ValidationFailed.*AwsSolutions-S10"):
        app.synth()


# --- queueing --------------------------------------------------------------------------------


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


# --- storage ---------------------------------------------------------------------------------


def test_table_keys_index_ttl_and_recovery_come_from_names(template: Template) -> None:
    _, table = only(template.find_resources("AWS::DynamoDB::Table"))
    properties = table["Properties"]

    assert properties["KeySchema"] == [
        {"AttributeName": names.PARTITION_KEY, "KeyType": "HASH"},
        {"AttributeName": names.SORT_KEY, "KeyType": "RANGE"},
    ]
    assert sorted(properties["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == sorted(
        (
            {"AttributeName": name, "AttributeType": "S"}
            for name in (
                names.PARTITION_KEY,
                names.SORT_KEY,
                names.STATUS_INDEX_PK,
                names.STATUS_INDEX_SK,
            )
        ),
        key=lambda a: a["AttributeName"],
    )
    assert properties["GlobalSecondaryIndexes"] == [
        {
            "IndexName": names.STATUS_INDEX,
            "KeySchema": [
                {"AttributeName": names.STATUS_INDEX_PK, "KeyType": "HASH"},
                {"AttributeName": names.STATUS_INDEX_SK, "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["TimeToLiveSpecification"] == {
        "AttributeName": names.TTL_ATTRIBUTE,
        "Enabled": True,
    }
    assert table["DeletionPolicy"] == "Retain"


@pytest.mark.parametrize("construct_id", ["Payloads", "Uploads"])
def test_data_buckets_are_versioned_encrypted_private_and_tls_only(
    template: Template, construct_id: str
) -> None:
    bucket_id, resource = bucket(template, construct_id)
    properties = resource["Properties"]

    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ] == {"SSEAlgorithm": "AES256"}
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert "LoggingConfiguration" in properties
    _, policy = only(
        template.find_resources(
            "AWS::S3::BucketPolicy", {"Properties": {"Bucket": {"Ref": bucket_id}}}
        )
    )
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert {
        "Action": "s3:*",
        "Effect": "Deny",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }.items() <= statements[0].items()


def test_uploads_bucket_notifies_s3_trigger_on_object_created(template: Template) -> None:
    uploads_id, _ = bucket(template, "Uploads")
    s3_trigger_id, _ = function_of(template, S3_TRIGGER)

    _, notifications = only(template.find_resources("Custom::S3BucketNotifications"))

    assert notifications["Properties"]["BucketName"] == {"Ref": uploads_id}
    assert notifications["Properties"]["NotificationConfiguration"] == {
        "LambdaFunctionConfigurations": [
            {
                "Events": ["s3:ObjectCreated:*"],
                "LambdaFunctionArn": {"Fn::GetAtt": [s3_trigger_id, "Arn"]},
            }
        ]
    }
    template.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Fn::GetAtt": [s3_trigger_id, "Arn"]},
            "Principal": "s3.amazonaws.com",
            "SourceArn": {"Fn::GetAtt": [uploads_id, "Arn"]},
        },
    )


# --- functions -------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.folder)
def test_function_runs_python_3_12_on_arm64_with_the_shared_layer(
    template: Template, spec: FunctionSpec
) -> None:
    layer_id = logical_id(template, "AWS::Lambda::LayerVersion")

    _, function = function_of(template, spec)
    properties = function["Properties"]

    assert properties["Runtime"] == "python3.12"
    assert properties["Architectures"] == ["arm64"]
    assert properties["Handler"] == f"{spec.folder}.handler.handler"
    assert properties["Layers"] == [{"Ref": layer_id}]
    assert properties["TracingConfig"] == {"Mode": "Active"}
    assert properties["Timeout"] == spec.timeout_seconds


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.folder)
def test_function_environment_sets_every_names_env_key(
    template: Template, spec: FunctionSpec
) -> None:
    table_id = logical_id(template, "AWS::DynamoDB::Table")
    payloads_id, _ = bucket(template, "Payloads")
    transitions_id, _ = queue(template, "Transitions")
    dlq_id, _ = queue(template, "DeadLetters")
    topic_id = logical_id(template, "AWS::SNS::Topic")
    api_id = logical_id(template, "AWS::ApiGateway::RestApi")

    _, function = function_of(template, spec)
    variables = function["Properties"]["Environment"]["Variables"]

    assert set(ENV_KEYS) <= set(variables)
    assert variables[names.ENV_TABLE] == {"Ref": table_id}
    assert variables[names.ENV_BUCKET] == {"Ref": payloads_id}
    assert variables[names.ENV_QUEUE_URL] == {"Ref": transitions_id}
    assert variables[names.ENV_DLQ_URL] == {"Ref": dlq_id}
    assert variables[names.ENV_TOPIC_ARN] == {"Ref": topic_id}
    assert variables[names.ENV_GRAPH] == DEFAULT_GRAPH
    assert variables[names.ENV_OFFLOAD_BYTES] == "8192"
    assert variables[names.ENV_STALE_SECONDS] == "360"
    assert variables[names.ENV_SWEEP_MINUTES] == "2"
    assert variables[names.ENV_MAX_RECEIVES] == str(MAX_RECEIVE_COUNT)
    assert variables[names.ENV_SIGNING_KEY_PARAM]["Ref"].startswith("SigningApprovalSigningKey")
    assert variables[names.ENV_WEBHOOK_SECRET_PARAM]["Ref"].startswith("SigningWebhookSecret")
    assert variables[LEDGER_KEY_ENV]["Fn::GetAtt"][0].startswith("SigningLedgerKey")
    url_parts = variables[names.ENV_PUBLIC_BASE_URL]["Fn::Join"][1]
    assert url_parts[0] == "https://"
    assert url_parts[1] == {"Ref": api_id}
    assert url_parts[-1] == f"/{STAGE_NAME}"


def rule(template: Template, construct_id: str) -> Resource:
    rules = template.find_resources("AWS::Events::Rule")
    return only({k: v for k, v in rules.items() if k.startswith(construct_id)})[1]


def test_sweeper_runs_every_two_minutes_by_default(template: Template) -> None:
    """The default schedule and window notice a stranded thread within minutes."""
    sweeper_id, _ = function_of(template, SWEEPER)

    sweep = rule(template, "SweepSchedule")

    assert sweep["Properties"]["ScheduleExpression"] == "rate(2 minutes)"
    assert sweep["Properties"]["State"] == "ENABLED"
    assert [t["Arn"] for t in sweep["Properties"]["Targets"]] == [
        {"Fn::GetAtt": [sweeper_id, "Arn"]}
    ]
    assert "Input" not in sweep["Properties"]["Targets"][0]


def test_sweeper_runs_the_retention_job_daily_by_default(template: Template) -> None:
    """A second rule sends the sweeper the retention job's event; `-c retention_hours` sets it."""
    sweeper_id, _ = function_of(template, SWEEPER)

    retention = rule(template, "RetentionSchedule")
    (target,) = retention["Properties"]["Targets"]

    assert retention["Properties"]["ScheduleExpression"] == "rate(1 day)"
    assert target["Arn"] == {"Fn::GetAtt": [sweeper_id, "Arn"]}
    assert json.loads(target["Input"]) == {names.SWEEPER_JOB_KEY: names.RETENTION_JOB}
    _, stack = build_app({**NO_BUNDLING, "retention_hours": "6"})
    hourly = rule(Template.from_stack(stack), "RetentionSchedule")
    assert hourly["Properties"]["ScheduleExpression"] == "rate(6 hours)"


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


def test_failed_s3_starts_are_kept_in_a_dead_letter_queue(template: Template) -> None:
    failed_id, _ = queue(template, "FailedStarts")

    _, s3_trigger = function_of(template, S3_TRIGGER)

    assert s3_trigger["Properties"]["DeadLetterConfig"] == {
        "TargetArn": {"Fn::GetAtt": [failed_id, "Arn"]}
    }


# --- api -------------------------------------------------------------------------------------


def test_api_declares_exactly_the_routes_with_their_authorization(template: Template) -> None:
    api_function_id, _ = function_of(template, API)
    paths = resource_paths(template)

    methods = template.find_resources("AWS::ApiGateway::Method")
    declared = {
        (
            m["Properties"]["HttpMethod"],
            paths[m["Properties"]["ResourceId"]["Ref"]],
            m["Properties"]["AuthorizationType"],
        )
        for m in methods.values()
    }

    assert declared == {
        ("POST", "/threads", "NONE"),
        ("GET", "/threads/{id}", "AWS_IAM"),
        ("GET", "/threads/{id}/history", "AWS_IAM"),
        ("GET", "/threads/{id}/steps/{n}", "AWS_IAM"),
        ("POST", "/threads/{id}/resume", "AWS_IAM"),
        ("GET", "/threads/{id}/verify", "AWS_IAM"),
        ("GET", "/threads/{id}/diff", "AWS_IAM"),
        ("GET", "/threads/{id}/export", "AWS_IAM"),
        ("POST", "/threads/{id}/fork", "AWS_IAM"),
        ("POST", "/threads/{id}/erase", "AWS_IAM"),
        ("GET", "/approvals/{token}", "NONE"),
        ("POST", "/approvals/{token}", "NONE"),
    } | {  # the ledger explorer's, tested in test_explorer_auth.py
        (r.method, r.path, "NONE") for r in EXPLORER_ROUTES
    }
    assert len(methods) == len(ROUTES) + len(EXPLORER_ROUTES)
    for method in methods.values():
        integration = method["Properties"]["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert {"Fn::GetAtt": [api_function_id, "Arn"]} in integration["Uri"]["Fn::Join"][1]


def test_api_stage_logs_and_traces(template: Template) -> None:
    _, stage = only(template.find_resources("AWS::ApiGateway::Stage"))
    properties = stage["Properties"]

    assert properties["StageName"] == STAGE_NAME
    assert properties["TracingEnabled"] is True
    assert "DestinationArn" in properties["AccessLogSetting"]
    assert {
        "HttpMethod": "*",
        "ResourcePath": "/*",
        "LoggingLevel": "ERROR",
    }.items() <= properties["MethodSettings"][0].items()


# --- notifications and signing ----------------------------------------------------------------


def test_approvals_topic_is_encrypted(template: Template) -> None:
    _, topic = only(template.find_resources("AWS::SNS::Topic"))

    assert "KmsMasterKeyId" in topic["Properties"]


def test_ledger_key_is_an_asymmetric_signing_key(template: Template) -> None:
    _, key = only(template.find_resources("AWS::KMS::Key"))

    assert key["Properties"]["KeySpec"] == "ECC_NIST_P256"
    assert key["Properties"]["KeyUsage"] == "SIGN_VERIFY"
    assert key["DeletionPolicy"] == "Retain"


def test_hmac_secrets_are_generated_not_written(template: Template) -> None:
    secrets = template.find_resources("AWS::SecretsManager::Secret")

    assert len(secrets) == 2
    for secret in secrets.values():
        assert "SecretString" not in secret["Properties"]
        assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32


# --- least privilege -------------------------------------------------------------------------


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
                assert resource["Fn::Join"][1][-1] == f"/{names.PAYLOAD_PREFIX}*"


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


# --- configuration ---------------------------------------------------------------------------


def test_context_overrides_the_defaults() -> None:
    app = App(context={"graph": "examples.document_pipeline:graph", "stale_seconds": "60"})

    config = StackConfig.from_context(app.node)

    assert config.graph == "examples.document_pipeline:graph"
    assert config.stale_seconds == 60
    assert config.offload_bytes == 8192
    assert config.approval_email is None


def test_sweeper_schedule_and_window_come_from_context() -> None:
    """`-c sweep_minutes=... -c stale_seconds=...` set the rule's rate and the functions' window."""
    _, stack = build_app({**NO_BUNDLING, "sweep_minutes": "7", "stale_seconds": "420"})
    template = Template.from_stack(stack)

    sweep = rule(template, "SweepSchedule")
    _, sweeper = function_of(template, SWEEPER)
    variables = sweeper["Properties"]["Environment"]["Variables"]

    assert sweep["Properties"]["ScheduleExpression"] == "rate(7 minutes)"
    assert (variables[names.ENV_STALE_SECONDS], variables[names.ENV_SWEEP_MINUTES]) == ("420", "7")


# --- mail (SES) ------------------------------------------------------------------------------


def ses_statements(template: Template, spec: FunctionSpec) -> list[Resource]:
    return [
        s
        for s in statements_of(template, spec)
        if any(a.startswith("ses:") for a in as_list(s["Action"]))
    ]


def test_only_the_worker_may_send_email_and_only_from_the_configured_identity(
    template: Template,
) -> None:
    """Given `-c mail_from=agent@example.com`, then the worker (which runs nodes) may call
    ses:SendEmail on that identity's ARN with that From address, and no other function may
    call SES; every function is told the address."""
    [statement] = ses_statements(template, WORKER)

    assert statement["Action"] == "ses:SendEmail"
    assert statement["Condition"] == {"StringEquals": {"ses:FromAddress": MAIL_FROM}}
    parts = joined_parts(statement["Resource"])
    assert parts[-1] == f":identity/{MAIL_FROM}" and {"Ref": "AWS::AccountId"} in parts
    for spec in SPECS:
        _, function = function_of(template, spec)
        assert function["Properties"]["Environment"]["Variables"][names.ENV_MAIL_FROM] == MAIL_FROM
        if spec is not WORKER:
            assert ses_statements(template, spec) == []


def test_without_mail_from_no_function_may_send_email() -> None:
    _, stack = build_app(NO_BUNDLING)
    template = Template.from_stack(stack)

    for spec in SPECS:
        assert ses_statements(template, spec) == []
        _, function = function_of(template, spec)
        assert names.ENV_MAIL_FROM not in function["Properties"]["Environment"]["Variables"]


def test_a_domain_identity_is_granted_for_an_address_in_it() -> None:
    context = {**NO_BUNDLING, "mail_from": "agent@mail.example.com"}
    _, stack = build_app({**context, "mail_identity": "mail.example.com"})
    [statement] = ses_statements(Template.from_stack(stack), WORKER)

    assert joined_parts(statement["Resource"])[-1] == ":identity/mail.example.com"
    assert statement["Condition"]["StringEquals"]["ses:FromAddress"] == "agent@mail.example.com"


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"mail_from": "Agent Smith"}, "mail_from: not an email address"),
        ({"mail_from": "a@example.com", "mail_identity": "other.org"}, "not an address of"),
        ({"mail_identity": "example.com"}, "needs -c mail_from"),
    ],
)
def test_a_bad_mail_setting_fails_the_synthesis_naming_it(
    context: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        StackConfig.from_context(App(context=context).node)


# --- the webhook secret ----------------------------------------------------------------------


def test_the_webhook_secret_is_set_in_whsec_form_by_a_custom_resource(template: Template) -> None:
    """The stack's webhook secret is given a `whsec_` value by a custom resource whose function
    may only put a value into that one secret; the api function waits for it."""
    secret_id, _ = only(
        {
            k: v
            for k, v in template.find_resources("AWS::SecretsManager::Secret").items()
            if k.startswith("SigningWebhookSecret")
        }
    )
    custom_id, custom = only(template.find_resources("Custom::WebhookSecretValue"))
    assert custom["Properties"]["SecretId"] == {"Ref": secret_id}
    setter_id = custom["Properties"]["ServiceToken"]["Fn::GetAtt"][0]
    setter = template.find_resources("AWS::Lambda::Function")[setter_id]
    assert setter["Properties"]["Handler"] == "webhook_secret.handler.handler"

    role_id = setter["Properties"]["Role"]["Fn::GetAtt"][0]
    policies = template.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role_id}]}}
    )
    statements = [
        s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert actions == {"secretsmanager:PutSecretValue", "logs:CreateLogStream", "logs:PutLogEvents"}
    [put] = [s for s in statements if s["Action"] == "secretsmanager:PutSecretValue"]
    assert put["Resource"] == {"Ref": secret_id}

    api_id, _ = function_of(template, API)
    assert custom_id in template.to_json()["Resources"][api_id]["DependsOn"]


# --- encryption at rest ----------------------------------------------------------------------

DATA_KEY_USE = {"kms:GenerateDataKey", "kms:Decrypt"}


def test_encryption_at_rest_is_off_unless_asked(template: Template) -> None:
    """Without `-c encrypt_at_rest=true` no data key exists, no function may use one, and no
    function is told of one (values are stored as they are, as before)."""
    for spec in SPECS:
        _, function = function_of(template, spec)
        environment = function["Properties"]["Environment"]["Variables"]
        assert names.OPERATOR_ENV_DATA_KEY_ID not in environment
        assert not DATA_KEY_USE & actions_of(template, spec)
    assert "DataKeyArn" not in template.find_outputs("*")


def test_encryption_at_rest_creates_a_rotated_data_key_every_function_may_use_alone() -> None:
    """`-c encrypt_at_rest=true`: one symmetric KMS key, rotated and retained, named in every
    function's environment and the stack's outputs (the CLI's aws:// URI reads it), and each
    function may generate and unwrap data keys with that key only."""
    app, stack = build_app({**NO_BUNDLING, "mail_from": MAIL_FROM, "encrypt_at_rest": "true"})
    assert AwsSolutionsChecks().validate_scope(app).violations == []
    template = Template.from_stack(stack)
    keys = template.find_resources("AWS::KMS::Key", {"Properties": {"EnableKeyRotation": True}})
    data_key_id, data_key = only(keys)

    assert "KeySpec" not in data_key["Properties"]  # symmetric (the default spec)
    assert data_key["DeletionPolicy"] == "Retain"
    arn = {"Fn::GetAtt": [data_key_id, "Arn"]}
    assert template.find_outputs("DataKeyArn")["DataKeyArn"]["Value"] == arn
    for spec in SPECS:
        _, function = function_of(template, spec)
        assert (
            function["Properties"]["Environment"]["Variables"][names.OPERATOR_ENV_DATA_KEY_ID]
            == arn
        )
        uses = [
            statement
            for statement in statements_of(template, spec)
            if DATA_KEY_USE & set(as_list(statement["Action"]))
        ]
        assert uses, f"{spec.folder} may not use the data key"
        for statement in uses:
            assert set(as_list(statement["Action"])) == DATA_KEY_USE
            assert statement["Resource"] == arn
