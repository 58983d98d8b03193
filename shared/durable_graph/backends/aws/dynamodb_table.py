"""One DynamoDB table as the store's parts use it (`names.py` has its keys and attributes): the
partition of a thread, a conditional put that brings back the item that won, a consistent
GetItem, and AWS errors translated once (`errors.translate`). The base of the thread, record
and checkpoint parts of `DynamoDBCheckpointStore`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from durable_graph.backends.aws import names
from durable_graph.backends.aws.errors import error_code, translate

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

Item = Mapping[str, "AttributeValueTypeDef"]


def partition(thread_id: str) -> str:
    return f"thread#{thread_id}"


class DynamoDBTable:
    """A client and the name of the table built from `infra.table_definition.TABLE`."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table = table_name

    def _conditional_put(
        self, item: dict[str, AttributeValueTypeDef], expected: int | None, action: str
    ) -> None:
        request: dict[str, Any] = {
            "TableName": self.table,
            "Item": item,
            **put_condition(expected),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        try:
            self.client.put_item(**request)
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise translate(exc, action) from exc
            raise Lost(old_item(exc)) from exc
        except BotoCoreError as exc:
            raise translate(exc, action) from exc

    def _get(self, thread_id: str, sort_key: str, action: str) -> Item | None:
        response = self._call(
            action,
            self.client.get_item,
            {
                "TableName": self.table,
                "Key": {
                    names.PARTITION_KEY: {"S": partition(thread_id)},
                    names.SORT_KEY: {"S": sort_key},
                },
                "ConsistentRead": True,
            },
        )
        item = response.get("Item")
        return item if item else None

    @staticmethod
    def _call(action: str, method: Any, request: Mapping[str, Any]) -> Any:
        try:
            return method(**request)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, action) from exc


def put_condition(expected: int | None) -> dict[str, Any]:
    """The condition of a CAS record's put, as request parameters."""
    if expected is None:
        # Create: only if no item has this key yet.
        return {
            "ConditionExpression": "attribute_not_exists(#pk)",
            "ExpressionAttributeNames": {"#pk": names.PARTITION_KEY},
        }
    # Compare-and-set: replace only the version the caller read; a writer that read an older
    # version (or a record deleted meanwhile) loses and gets the current item.
    return {
        "ConditionExpression": "#version = :expected",
        "ExpressionAttributeNames": {"#version": names.VERSION_ATTRIBUTE},
        "ExpressionAttributeValues": {":expected": {"N": str(expected)}},
    }


class Lost(Exception):
    """Internal: a conditional put lost; carries the stored item (or None)."""

    def __init__(self, item: Item | None) -> None:
        super().__init__("condition failed")
        self.item = item


def old_item(exc: ClientError) -> Item | None:
    """The stored item a lost condition returned (`ReturnValuesOnConditionCheckFailure`)."""
    item: Any = exc.response.get("Item")  # not in botocore's error shape, but sent by DynamoDB
    return item if isinstance(item, Mapping) and item else None
