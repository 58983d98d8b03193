"""Where state lives: the checkpoint table, the payload bucket and the uploads bucket.

Grants are methods of this construct rather than `table.grant_read_write_data(...)` calls in the
stack, because only this module knows the access patterns: checkpoints are immutable (no code
path deletes one, so nobody gets `DeleteItem` or `BatchWriteItem`, which can delete; erasure
rewrites a committed row with `PutItem` under `attribute_exists`), payloads are
content-addressed under one prefix (so access is scoped to that prefix), and uploads are only
ever read by the engine. Deleting payload objects is erasure's alone (`grant_payloads_delete`:
the API's IAM-only erase route and the sweeper's retention job), and the sweeper's, which
deletes the chunks of lost appends the others leave it; the one table item anybody may delete
is such a leftover, by the sweeper (`grant_leftovers_forget`).
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from durable_graph.backends.aws import names
from infra.components.nag import acknowledge, acknowledge_on_role, arn_reference
from infra.components.queueing import DLQ_RETENTION
from infra.table_definition import TABLE, KeyAttribute

__all__ = ["Storage"]

_ATTRIBUTE_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}

# Reads: one item (a checkpoint, the thread head, a record), a history page, the status index.
TABLE_READ_ACTIONS = ("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query")
# Writes: conditional puts (a new checkpoint; a thread head or record at the expected version)
# and updates of mutable records. No DeleteItem/BatchWriteItem: nothing is ever deleted but by
# TTL, which DynamoDB itself applies, and a leftover by the sweeper (`LEFTOVER_DELETE_ACTIONS`).
TABLE_WRITE_ACTIONS = ("dynamodb:PutItem", "dynamodb:UpdateItem")
# The sweeper forgets a leftover it dealt with; only items of the leftovers partition
# (`dynamodb:LeadingKeys`), never a checkpoint, thread head or record.
LEFTOVER_DELETE_ACTIONS = ("dynamodb:DeleteItem",)
PAYLOAD_READ_ACTIONS = ("s3:GetObject",)
PAYLOAD_WRITE_ACTIONS = ("s3:PutObject",)
# Erasure deletes every version of a payload object it destroys (a delete marker alone would
# leave the bytes readable by version id), after listing the versions of that one key.
PAYLOAD_DELETE_ACTIONS = ("s3:DeleteObject", "s3:DeleteObjectVersion")
BUCKET_LIST_VERSIONS_ACTIONS = ("s3:ListBucketVersions",)
# An upload is addressed by (bucket, key, version): the version pins the bytes a run started from.
UPLOAD_READ_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion")
# ListBucket (on the bucket, not its objects) makes reading a missing object answer 404
# NoSuchKey instead of 403 AccessDenied, which the payload store reports as "missing".
BUCKET_LIST_ACTIONS = ("s3:ListBucket",)


def _attribute(key: KeyAttribute) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=key.name, type=_ATTRIBUTE_TYPES[key.type])


def _private_bucket(
    scope: Construct,
    construct_id: str,
    logs: s3.IBucket | None,
    lifecycle_rules: list[s3.LifecycleRule] | None = None,
) -> s3.Bucket:
    """A versioned, encrypted, TLS-only bucket with no public access, retained on stack delete."""
    return s3.Bucket(
        scope,
        construct_id,
        versioned=True,
        lifecycle_rules=lifecycle_rules,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        server_access_logs_bucket=logs,
        server_access_logs_prefix=f"{construct_id.lower()}/" if logs else None,
        removal_policy=RemovalPolicy.RETAIN,
    )


def message_bodies_expire() -> s3.LifecycleRule:
    """Queue bodies kept by the claim check (`names.MESSAGE_PREFIX`) expire a day after the DLQ
    would have dropped their message: no record names them, the payload collector never lists
    them, and nothing else deletes them. Their older versions go a day after they are replaced."""
    return s3.LifecycleRule(
        id="QueueBodiesExpire",
        prefix=names.MESSAGE_PREFIX,
        expiration=Duration.days(int(DLQ_RETENTION.to_days()) + 1),
        noncurrent_version_expiration=Duration.days(1),
    )


class Storage(Construct):
    """The DynamoDB table (from `infra.table_definition.TABLE`) and the S3 buckets.

    Attributes:
        table: checkpoints, thread heads and small records.
        payload_bucket: content-addressed payloads under `names.PAYLOAD_PREFIX`.
        uploads_bucket: objects whose creation starts a run.
        access_logs_bucket: server access logs of the two buckets above.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)

        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=_attribute(TABLE.partition_key),
            sort_key=_attribute(TABLE.sort_key),
            # A step is one conditional write whatever the load; suspended threads cost nothing.
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=TABLE.ttl_attribute,
            # The table is the audit ledger: neither a stack delete nor a console click drops it.
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        for index in TABLE.indexes:
            self.table.add_global_secondary_index(
                index_name=index.name,
                partition_key=_attribute(index.partition_key),
                sort_key=_attribute(index.sort_key),
                projection_type=dynamodb.ProjectionType.ALL,
            )

        self.access_logs_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.access_logs_bucket,
            "S1",
            "This is the access-log bucket; logging it into itself would loop.",
        )
        self.payload_bucket = _private_bucket(
            self, "Payloads", self.access_logs_bucket, [message_bodies_expire()]
        )
        self.uploads_bucket = _private_bucket(self, "Uploads", self.access_logs_bucket)

    @property
    def status_index_arn(self) -> str:
        """The ARN of the status index alone, so no grant needs `index/*`."""
        return f"{self.table.table_arn}/index/{names.STATUS_INDEX}"

    def grant_checkpoints_read(self, function: lambda_.Function) -> None:
        """Read checkpoints, thread heads and the status index."""
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=list(TABLE_READ_ACTIONS),
                resources=[self.table.table_arn, self.status_index_arn],
            )
        )

    def grant_checkpoints_write(self, function: lambda_.Function) -> None:
        """Append checkpoints and update thread heads; never delete."""
        function.add_to_role_policy(
            iam.PolicyStatement(actions=list(TABLE_WRITE_ACTIONS), resources=[self.table.table_arn])
        )

    def grant_payloads_read(self, function: lambda_.Function) -> None:
        """Read payload objects (and learn which ones exist), and queue bodies kept by the
        claim check (`names.MESSAGE_PREFIX`)."""
        for prefix in (names.PAYLOAD_PREFIX, names.MESSAGE_PREFIX):
            self._grant_objects(function, self.payload_bucket, PAYLOAD_READ_ACTIONS, prefix)

    def grant_payloads_write(self, function: lambda_.Function) -> None:
        """Store new payload objects and queue bodies; content addressing means nothing is ever
        deleted (the collector and erasure delete with `grant_payloads_delete`)."""
        for prefix in (names.PAYLOAD_PREFIX, names.MESSAGE_PREFIX):
            self._grant_objects(function, self.payload_bucket, PAYLOAD_WRITE_ACTIONS, prefix)

    def grant_payloads_delete(self, function: lambda_.Function) -> None:
        """Delete payload objects, every version, under the payload prefix only: what erasure
        (`durable_graph.erasure`) needs to destroy an erased value's chunk or `$payload`
        object. Listing versions is limited to the same prefix by the `s3:prefix` condition.
        The function is told (`GRANT_ENV_PAYLOAD_DELETES`): it also deletes the chunks of a
        step that lost its conditional append (`durable_graph.orphans`), where others leave
        them to the sweeper (`grant_leftovers_forget`)."""
        function.add_environment(names.GRANT_ENV_PAYLOAD_DELETES, "true")
        self._grant_objects(
            function, self.payload_bucket, PAYLOAD_DELETE_ACTIONS, names.PAYLOAD_PREFIX
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=list(BUCKET_LIST_VERSIONS_ACTIONS),
                resources=[self.payload_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{names.PAYLOAD_PREFIX}*"]}},
            )
        )

    def grant_leftovers_forget(self, function: lambda_.Function) -> None:
        """Delete the table's leftover items (`names.LEFTOVERS_PARTITION`) and no other: the
        chunks of lost appends the functions without a payload delete left for the sweeper
        (`durable_graph.leftovers`), once it has deleted them. Every item's partition key is
        its leading key, so the condition holds the grant to that one partition."""
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=list(LEFTOVER_DELETE_ACTIONS),
                resources=[self.table.table_arn],
                conditions={
                    "ForAllValues:StringEquals": {
                        "dynamodb:LeadingKeys": [names.LEFTOVERS_PARTITION]
                    }
                },
            )
        )

    def grant_uploads_read(self, function: lambda_.Function) -> None:
        """Read uploaded objects (any key: uploaders choose their own)."""
        self._grant_objects(function, self.uploads_bucket, UPLOAD_READ_ACTIONS, "")

    def _grant_objects(
        self,
        function: lambda_.Function,
        bucket: s3.Bucket,
        actions: tuple[str, ...],
        prefix: str,
    ) -> None:
        objects = f"{prefix}*"
        function.add_to_role_policy(
            iam.PolicyStatement(actions=list(actions), resources=[bucket.arn_for_objects(objects)])
        )
        function.add_to_role_policy(
            iam.PolicyStatement(actions=list(BUCKET_LIST_ACTIONS), resources=[bucket.bucket_arn])
        )
        acknowledge_on_role(
            function,
            f"IAM5[Resource::{arn_reference(bucket)}/{objects}]",
            "Object keys are content hashes or uploader-chosen names, unknown at deploy time; "
            "access is limited to this bucket"
            + (f" and the {prefix!r} prefix." if prefix else "."),
        )
