"""`aws://NAME`: find a deployed store's table, bucket, queue and key from a name an operator
knows — the CloudFormation stack's name, or the DynamoDB table's.

A stack's outputs (`infra/stack.py`: `TableName`, `PayloadBucketName`, `TransitionQueueUrl`,
`DeadLetterQueueUrl`, `ApprovalsTopicArn`, `LedgerKeyArn`) name every resource. A table created
by CloudFormation carries the tag `aws:cloudformation:stack-name`, so a table name leads to the
same outputs; a table outside any stack needs `?bucket=` (and `queue=`, `key=` to write and sign).
Query parameters always override what the stack says.

Reading a thread (status, history, verify, export) needs only the table and the bucket; a URI
without a queue opens a store that refuses to queue work, by name, instead of failing later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from durable_graph.backend import Backend
from durable_graph.backends.aws.factory import (
    CLIENT_CONFIG,
    AwsClients,
    aws_backend,
    default_session,
)
from durable_graph.payloads import DEFAULT_OFFLOAD_BYTES
from durable_graph.store_uri import StoreURI

# stack output → field of `AwsStoreNames`; the names `infra/stack.py` gives its outputs.
STACK_OUTPUTS = {
    "TableName": "table_name",
    "PayloadBucketName": "bucket",
    "TransitionQueueUrl": "queue_url",
    "DeadLetterQueueUrl": "dlq_url",
    "ApprovalsTopicArn": "topic_arn",
    "LedgerKeyArn": "ledger_key_id",
    "DataKeyArn": "data_key_id",
}
# URI option → field: `aws://table?bucket=...&queue=...&key=...`
URI_OPTIONS = {
    "bucket": "bucket",
    "queue": "queue_url",
    "dlq": "dlq_url",
    "topic": "topic_arn",
    "key": "ledger_key_id",
    "data_key": "data_key_id",
}
STACK_TAG = "aws:cloudformation:stack-name"
_T = TypeVar("_T")


@dataclass(frozen=True)
class AwsStoreNames:
    """Where a deployed store's parts are (the subset of `AwsSettings` a backend needs)."""

    table_name: str
    bucket: str
    queue_url: str | None = None
    dlq_url: str | None = None
    topic_arn: str | None = None
    ledger_key_id: str | None = None
    data_key_id: str | None = None  # KMS key wrapping thread data keys: encryption at rest
    offload_bytes: int = DEFAULT_OFFLOAD_BYTES
    mail_from: str | None = None  # an audit reads and forks: it sends no mail


def session_for(parsed: StoreURI) -> boto3.Session:
    region, profile = parsed.option("region"), parsed.option("profile")
    if region is None and profile is None:
        return default_session()
    try:
        return boto3.Session(region_name=region, profile_name=profile)
    except BotoCoreError as exc:
        raise parsed.fail(str(exc)) from None


def _ask(parsed: StoreURI, what: str, call: Callable[[], _T], absent: str) -> _T | None:
    """One AWS call made while resolving `parsed`: None when AWS answers `absent` (no such
    stack or table); any other failure (no credentials or region, access denied, throttled)
    says which call failed and why, as a store URI problem (exit 2, nothing written)."""
    try:
        return call()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == absent:
            return None
        raise parsed.fail(f"{what} failed: {exc}") from None
    except BotoCoreError as exc:
        raise parsed.fail(
            f"{what} failed: {exc} (set AWS_REGION or ?region=, and credentials)"
        ) from None


def stack_outputs(parsed: StoreURI, cloudformation: Any, stack: str) -> dict[str, str] | None:
    """The outputs of `stack`, or None when no such stack exists."""
    # CloudFormation answers ValidationError both for "no such stack" and for a name no stack
    # could have (a table name with '_' or '.'): either way NAME is not a stack.
    found = _ask(
        parsed,
        f"CloudFormation DescribeStacks {stack!r}",
        lambda: cloudformation.describe_stacks(StackName=stack)["Stacks"],
        absent="ValidationError",
    )
    if not found:
        return None
    return {o["OutputKey"]: o["OutputValue"] for o in found[0].get("Outputs", [])}


def stack_of_table(parsed: StoreURI, dynamodb: Any, table: str) -> str | None:
    """The stack that created `table` (its CloudFormation tag; "" for none), or None when there
    is no such table."""

    def tags() -> list[dict[str, str]]:
        arn = dynamodb.describe_table(TableName=table)["Table"]["TableArn"]
        found: list[dict[str, str]] = dynamodb.list_tags_of_resource(ResourceArn=arn).get(
            "Tags", []
        )
        return found

    found = _ask(parsed, f"DynamoDB DescribeTable {table!r}", tags, "ResourceNotFoundException")
    if found is None:
        return None
    return next((t["Value"] for t in found if t["Key"] == STACK_TAG), "")


def resolve(parsed: StoreURI, session: boto3.Session) -> AwsStoreNames:
    """The names `aws://NAME?...` stands for (stack outputs, then the URI's options)."""
    if not parsed.name or parsed.path not in ("", "/"):
        raise parsed.fail("expected aws://STACK-OR-TABLE (e.g. aws://durable-graph)")
    try:
        cloudformation = session.client("cloudformation", config=CLIENT_CONFIG)
        dynamodb = session.client("dynamodb", config=CLIENT_CONFIG)
    except BotoCoreError as exc:
        raise parsed.fail(f"{exc} (set AWS_REGION or add ?region=)") from None
    outputs = stack_outputs(parsed, cloudformation, parsed.name)
    fields: dict[str, str] = {}
    if outputs is None:
        stack = stack_of_table(parsed, dynamodb, parsed.name)
        if stack is None:
            raise parsed.fail(
                f"no CloudFormation stack and no DynamoDB table is named {parsed.name!r}"
            )
        outputs = (stack_outputs(parsed, cloudformation, stack) if stack else None) or {}
        fields["table_name"] = parsed.name
    fields = {
        **{STACK_OUTPUTS[k]: v for k, v in outputs.items() if k in STACK_OUTPUTS},
        **fields,
        **{URI_OPTIONS[k]: v for k, v in parsed.options.items() if k in URI_OPTIONS},
    }
    for required in ("table_name", "bucket"):
        if not fields.get(required):
            raise parsed.fail(
                f"cannot tell the {required.replace('_name', '')}: {parsed.name!r} is a table "
                "outside any stack; add ?bucket=PAYLOAD-BUCKET"
            )
    return AwsStoreNames(
        table_name=fields["table_name"],
        bucket=fields["bucket"],
        queue_url=fields.get("queue_url"),
        dlq_url=fields.get("dlq_url"),
        topic_arn=fields.get("topic_arn"),
        ledger_key_id=fields.get("ledger_key_id"),
        data_key_id=fields.get("data_key_id"),
    )


def open_aws(parsed: StoreURI) -> Backend:
    """The `aws://` opener registered in `durable_graph.store_uri`."""
    session = session_for(parsed)
    names = resolve(parsed, session)
    return aws_backend(names, AwsClients.create(session))


__all__ = ["AwsStoreNames", "open_aws", "resolve", "stack_outputs"]
