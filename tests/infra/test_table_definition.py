"""`infra.table_definition`: the moto table and the CDK table come from one definition.

Given a moto DynamoDB, when a table is created from `table_definition()` (and its TTL from
`time_to_live_definition()`), then what DynamoDB reports back equals what the synthesised
CloudFormation template declares for the deployed table.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from aws_cdk.assertions import Template
from moto import mock_aws

from durable_graph.backends.aws import names
from infra.app import build_app
from infra.table_definition import (
    TABLE,
    IndexSpec,
    KeyAttribute,
    TableSpec,
    table_definition,
    time_to_live_definition,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TABLE_NAME = "durable-graph-test"


@pytest.fixture(scope="module")
def cdk_table() -> dict[str, Any]:
    """The properties of the one AWS::DynamoDB::Table in the synthesised stack."""
    _, stack = build_app({"aws:cdk:bundling-stacks": []})
    tables = Template.from_stack(stack).find_resources("AWS::DynamoDB::Table")
    assert len(tables) == 1
    properties: dict[str, Any] = next(iter(tables.values()))["Properties"]
    return properties


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[DynamoDBClient]:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(variable, "testing")
    with mock_aws():
        yield boto3.client("dynamodb", region_name="us-east-1")


def by_name(attributes: list[Any]) -> list[Any]:
    return sorted(attributes, key=lambda a: a["AttributeName"])


def test_moto_table_matches_the_cdk_table(
    dynamodb: DynamoDBClient, cdk_table: dict[str, Any]
) -> None:
    dynamodb.create_table(**table_definition(TABLE_NAME))
    dynamodb.update_time_to_live(**time_to_live_definition(TABLE_NAME))

    described = dynamodb.describe_table(TableName=TABLE_NAME)["Table"]
    ttl = dynamodb.describe_time_to_live(TableName=TABLE_NAME)["TimeToLiveDescription"]

    assert described["KeySchema"] == cdk_table["KeySchema"]
    assert by_name(list(described["AttributeDefinitions"])) == by_name(
        cdk_table["AttributeDefinitions"]
    )
    indexes = [
        {
            "IndexName": index["IndexName"],
            "KeySchema": index["KeySchema"],
            "Projection": index["Projection"],
        }
        for index in described["GlobalSecondaryIndexes"]
    ]
    assert indexes == cdk_table["GlobalSecondaryIndexes"]
    assert described["BillingModeSummary"]["BillingMode"] == cdk_table["BillingMode"]
    assert ttl["TimeToLiveStatus"] == "ENABLED"
    assert ttl["AttributeName"] == cdk_table["TimeToLiveSpecification"]["AttributeName"]


def test_definition_is_built_from_the_names_module() -> None:
    definition = table_definition(TABLE_NAME)

    assert definition["TableName"] == TABLE_NAME
    assert definition["KeySchema"] == [
        {"AttributeName": names.PARTITION_KEY, "KeyType": "HASH"},
        {"AttributeName": names.SORT_KEY, "KeyType": "RANGE"},
    ]
    assert [index["IndexName"] for index in definition["GlobalSecondaryIndexes"]] == [
        names.STATUS_INDEX
    ]
    assert time_to_live_definition(TABLE_NAME)["TimeToLiveSpecification"] == {
        "Enabled": True,
        "AttributeName": names.TTL_ATTRIBUTE,
    }


def test_an_attribute_shared_by_keys_is_declared_once() -> None:
    spec = TableSpec(
        partition_key=KeyAttribute("pk", "S"),
        sort_key=KeyAttribute("sk", "S"),
        indexes=(IndexSpec("inverted", KeyAttribute("sk", "S"), KeyAttribute("pk", "S")),),
        ttl_attribute=TABLE.ttl_attribute,
    )

    definition = table_definition(TABLE_NAME, spec)

    assert [a["AttributeName"] for a in definition["AttributeDefinitions"]] == ["pk", "sk"]


def test_an_attribute_declared_with_two_types_is_rejected() -> None:
    spec = TableSpec(
        partition_key=KeyAttribute("pk", "S"),
        sort_key=KeyAttribute("sk", "S"),
        indexes=(IndexSpec("clash", KeyAttribute("pk", "N"), KeyAttribute("sk", "S")),),
        ttl_attribute=TABLE.ttl_attribute,
    )

    with pytest.raises(ValueError, match="'pk' declared as S and N"):
        table_definition(TABLE_NAME, spec)
