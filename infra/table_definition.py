"""The DynamoDB table, described once, as plain data.

The CDK stack (`infra.components.storage`) and the moto tables built by tests both derive from
`TABLE` below, so a test table can never have a key, index or TTL attribute that the deployed
table lacks. This module deliberately imports neither `aws_cdk` nor `boto3`: tests that only need
a moto table should not pay for loading the CDK (a Node.js process) or depend on it.

Example:
    >>> from infra.table_definition import table_definition
    >>> spec = table_definition("checkpoints")
    >>> [k["AttributeName"] for k in spec["KeySchema"]]
    ['pk', 'sk']
    >>> # with moto: boto3.client("dynamodb").create_table(**spec)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from durable_graph.backends.aws import names

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import (
        AttributeDefinitionTypeDef,
        CreateTableInputTypeDef,
        GlobalSecondaryIndexTypeDef,
        KeySchemaElementTypeDef,
        UpdateTimeToLiveInputTypeDef,
    )

__all__ = [
    "TABLE",
    "IndexSpec",
    "KeyAttribute",
    "TableSpec",
    "table_definition",
    "time_to_live_definition",
]

ScalarType = Literal["S", "N", "B"]


@dataclass(frozen=True)
class KeyAttribute:
    """One key attribute: its name and DynamoDB scalar type."""

    name: str
    type: ScalarType


@dataclass(frozen=True)
class IndexSpec:
    """A global secondary index projecting every attribute.

    ALL is chosen so a status query (the sweeper's "which threads are stuck?") answers from the
    index alone, without a second read per thread.
    """

    name: str
    partition_key: KeyAttribute
    sort_key: KeyAttribute


@dataclass(frozen=True)
class TableSpec:
    """Everything about the table that the stack and the tests must agree on."""

    partition_key: KeyAttribute
    sort_key: KeyAttribute
    indexes: tuple[IndexSpec, ...]
    ttl_attribute: str

    def attributes(self) -> tuple[KeyAttribute, ...]:
        """Every attribute used in a key of the table or an index, each once, in stable order.

        DynamoDB rejects a definition that lists an attribute twice or lists one no key uses.
        """
        seen: dict[str, KeyAttribute] = {}
        for attribute in (self.partition_key, self.sort_key, *self._index_keys()):
            previous = seen.setdefault(attribute.name, attribute)
            if previous.type != attribute.type:
                msg = (
                    f"attribute {attribute.name!r} declared as {previous.type} and {attribute.type}"
                )
                raise ValueError(msg)
        return tuple(seen.values())

    def _index_keys(self) -> tuple[KeyAttribute, ...]:
        return tuple(key for index in self.indexes for key in (index.partition_key, index.sort_key))


TABLE = TableSpec(
    partition_key=KeyAttribute(names.PARTITION_KEY, "S"),
    sort_key=KeyAttribute(names.SORT_KEY, "S"),
    indexes=(
        IndexSpec(
            name=names.STATUS_INDEX,
            partition_key=KeyAttribute(names.STATUS_INDEX_PK, "S"),
            sort_key=KeyAttribute(names.STATUS_INDEX_SK, "S"),
        ),
    ),
    ttl_attribute=names.TTL_ATTRIBUTE,
)


def _key_schema(partition: KeyAttribute, sort: KeyAttribute) -> list[KeySchemaElementTypeDef]:
    return [
        {"AttributeName": partition.name, "KeyType": "HASH"},
        {"AttributeName": sort.name, "KeyType": "RANGE"},
    ]


def table_definition(table_name: str, spec: TableSpec = TABLE) -> CreateTableInputTypeDef:
    """Keyword arguments for boto3 `create_table`, matching the table the stack deploys.

    On-demand billing, as in the stack: a step costs one conditional write whatever the traffic,
    and idle threads (suspended for a human) cost nothing.

    Args:
        table_name: name to give the table (tests usually use a random one).
        spec: the table description; the default is the deployed table's.

    Returns:
        A dict with TableName, KeySchema, AttributeDefinitions, GlobalSecondaryIndexes and
        BillingMode. TTL is not a `create_table` argument: see `time_to_live_definition`.
    """
    attributes: list[AttributeDefinitionTypeDef] = [
        {"AttributeName": a.name, "AttributeType": a.type} for a in spec.attributes()
    ]
    indexes: list[GlobalSecondaryIndexTypeDef] = [
        {
            "IndexName": index.name,
            "KeySchema": _key_schema(index.partition_key, index.sort_key),
            "Projection": {"ProjectionType": "ALL"},
        }
        for index in spec.indexes
    ]
    return {
        "TableName": table_name,
        "KeySchema": _key_schema(spec.partition_key, spec.sort_key),
        "AttributeDefinitions": attributes,
        "GlobalSecondaryIndexes": indexes,
        "BillingMode": "PAY_PER_REQUEST",
    }


def time_to_live_definition(
    table_name: str, spec: TableSpec = TABLE
) -> UpdateTimeToLiveInputTypeDef:
    """Keyword arguments for boto3 `update_time_to_live`, the TTL half of the definition."""
    return {
        "TableName": table_name,
        "TimeToLiveSpecification": {"Enabled": True, "AttributeName": spec.ttl_attribute},
    }
