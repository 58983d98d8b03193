"""The table and buckets in the synthesised stack: keys, index, TTL and recovery from `names`;
versioned, encrypted, private, TLS-only buckets; uploads that start the s3 trigger.
"""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Template

from durable_graph.backends.aws import names
from infra.components.functions import S3_TRIGGER
from tests.infra.template_queries import bucket, function_of, only


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


def test_queue_bodies_expire_after_the_dlq_drops_their_messages(template: Template) -> None:
    """The claim check's bodies (`names.MESSAGE_PREFIX`) are named by no record and never
    listed by the payload collector: a lifecycle rule on that prefix alone expires them a day
    after the DLQ's retention, so a message waiting in the DLQ keeps its body."""
    from infra.components.queueing import DLQ_RETENTION

    _, payloads = bucket(template, "Payloads")
    (rule,) = payloads["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["Prefix"] == names.MESSAGE_PREFIX and rule["Status"] == "Enabled"
    assert rule["ExpirationInDays"] > DLQ_RETENTION.to_days()
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
    _, uploads = bucket(template, "Uploads")
    assert "LifecycleConfiguration" not in uploads["Properties"]
