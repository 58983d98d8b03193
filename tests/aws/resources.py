"""AWS resources for tests and benchmarks, created through the real APIs (on moto).

The table comes from `infra.table_definition`, the same description the CDK stack deploys, so a
test table cannot drift from the deployed one. Queues are FIFO with the redrive policy of the
stack (`maxReceiveCount`); a second queue subscribed to the SNS topic lets tests read what was
published.
"""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from durable_graph.backends.aws import names
from durable_graph.backends.aws.factory import CLIENT_CONFIG, AwsClients
from durable_graph.backends.aws.item_bodies import row_of
from durable_graph.backends.aws.settings import AwsSettings
from infra.table_definition import table_definition

REGION = "us-east-1"
MAIL_FROM = "agent@example.com"


def stored_row(item: dict[str, Any]) -> str:
    """The stored JSON of a table item's `body` (a checkpoint's may be zlib-compressed)."""
    row = row_of(item[names.BODY_ATTRIBUTE])
    return row.decode() if isinstance(row, bytes) else row


@functools.cache
def session() -> boto3.Session:
    """One session per process: it caches the service models, making new clients cheap."""
    return boto3.Session(
        region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def clients(endpoint_url: str | None = None) -> AwsClients:
    """Clients for moto: in-process (`mock_aws`) or a moto server at `endpoint_url`."""
    s = session()
    extra: dict[str, Any] = {"config": CLIENT_CONFIG}
    if endpoint_url:
        extra["endpoint_url"] = endpoint_url
    return AwsClients(
        dynamodb=s.client("dynamodb", **extra),
        s3=s.client("s3", **extra),
        sqs=s.client("sqs", **extra),
        sns=s.client("sns", **extra),
        kms=s.client("kms", **extra),
        ses=s.client("ses", **extra),
    )


@dataclass(frozen=True)
class Resources:
    settings: AwsSettings
    uploads_bucket: str
    notifications_url: str  # an SQS queue subscribed to the topic

    def env(self) -> dict[str, str]:
        """The environment the CDK stack gives the functions, for these resources."""
        s = self.settings
        values = {
            names.ENV_TABLE: s.table_name,
            names.ENV_BUCKET: s.bucket,
            names.ENV_QUEUE_URL: s.queue_url,
            names.ENV_GRAPH: s.graph,
            names.ENV_OFFLOAD_BYTES: str(s.offload_bytes),
            names.ENV_STALE_SECONDS: str(s.stale_seconds),
            names.ENV_MAX_RECEIVES: str(s.max_receives),
        }
        if s.dlq_url:
            values[names.ENV_DLQ_URL] = s.dlq_url
        if s.topic_arn:
            values[names.ENV_TOPIC_ARN] = s.topic_arn
        if s.ledger_key_id:
            values[names.ENV_LEDGER_KEY_ID] = s.ledger_key_id
        if s.mail_from:
            values[names.ENV_MAIL_FROM] = s.mail_from
        return values


def create_resources(
    aws: AwsClients,
    *,
    graph: str = "examples.email_approval:graph",
    max_receives: int = 5,
    visibility_timeout: int = 30,
    **overrides: Any,
) -> Resources:
    """A fresh table, payload and upload buckets, FIFO queue + DLQ, topic + reader queue, and
    the verified SES identity mail is sent from."""
    tag = uuid.uuid4().hex[:8]
    table = f"dg-{tag}"
    aws.dynamodb.create_table(**table_definition(table))
    bucket, uploads = f"dg-payloads-{tag}", f"dg-uploads-{tag}"
    aws.s3.create_bucket(Bucket=bucket)
    aws.s3.create_bucket(Bucket=uploads)
    aws.s3.put_bucket_versioning(Bucket=uploads, VersioningConfiguration={"Status": "Enabled"})
    dlq = aws.sqs.create_queue(
        QueueName=f"dg-dlq-{tag}.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "false"},
    )["QueueUrl"]
    dlq_arn = aws.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue = aws.sqs.create_queue(
        QueueName=f"dg-transitions-{tag}.fifo",
        Attributes={
            "FifoQueue": "true",
            "ContentBasedDeduplication": "false",
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives}
            ),
        },
    )["QueueUrl"]
    topic = aws.sns.create_topic(Name=f"dg-approvals-{tag}")["TopicArn"]
    ledger_key = aws.kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"][
        "KeyId"
    ]
    reader = aws.sqs.create_queue(QueueName=f"dg-notifications-{tag}")["QueueUrl"]
    reader_arn = aws.sqs.get_queue_attributes(QueueUrl=reader, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    aws.sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=reader_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    assert aws.ses is not None
    aws.ses.verify_email_identity(EmailAddress=MAIL_FROM)
    settings = AwsSettings(
        table_name=table,
        bucket=bucket,
        queue_url=queue,
        dlq_url=dlq,
        topic_arn=topic,
        graph=graph,
        max_receives=max_receives,
        ledger_key_id=ledger_key,
        **{"mail_from": MAIL_FROM, **overrides},
    )
    return Resources(settings=settings, uploads_bucket=uploads, notifications_url=reader)


def published(aws: AwsClients, resources: Resources) -> list[dict[str, Any]]:
    """Every notification published to the topic so far (read from the subscribed queue)."""
    found: list[dict[str, Any]] = []
    while True:
        batch = aws.sqs.receive_message(
            QueueUrl=resources.notifications_url, MaxNumberOfMessages=10
        ).get("Messages", [])
        if not batch:
            return found
        for raw in batch:
            found.append(json.loads(raw["Body"]))
            aws.sqs.delete_message(
                QueueUrl=resources.notifications_url, ReceiptHandle=raw["ReceiptHandle"]
            )


@dataclass(frozen=True)
class SentEmail:
    """One message SES accepted, as moto recorded it."""

    source: str
    to: list[str]
    subject: str
    body: str


def sent_emails(region: str = REGION) -> list[SentEmail]:
    """Every email SES accepted in this process's moto account (`mock_aws`), oldest first."""
    return [
        SentEmail(m.source, list(m.destinations["ToAddresses"]), m.subject, m.body)
        for m in ses_backends[DEFAULT_ACCOUNT_ID][region].sent_messages
    ]
