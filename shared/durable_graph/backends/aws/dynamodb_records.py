"""The CAS records of the DynamoDB store (`sk = "rec#<key>"`): small versioned values (pending
task writes, side effects, tokens) put by compare-and-set, read 100 keys per BatchGetItem, and
the fan-in's completion counter (`complete_task`: one transaction, one GetItem, however many
tasks the superstep has)."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from durable_graph.backends.aws import names
from durable_graph.backends.aws.dynamodb_table import (
    DynamoDBTable,
    Item,
    Lost,
    partition,
    put_condition,
)
from durable_graph.backends.aws.errors import AwsUnavailable, cancellation_reasons, translate
from durable_graph.canonical import compact_json
from durable_graph.checkpoint import VersionedRecord
from durable_graph.errors import RecordConflict

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef

BATCH_GET_KEYS = 100  # DynamoDB's limit of keys per BatchGetItem request
# UnprocessedKeys (throttling, the 16 MB response limit): rounds that returned nothing before
# giving up as transient, and the backoff between rounds (doubling, jittered, capped).
BATCH_GET_IDLE_ROUNDS = 8
# A complete_task transaction cancelled by a conflict (another completion holding the counter):
# attempts in-process before giving up as transient.
TRANSACTION_ATTEMPTS = 4
BACKOFF_SECONDS = 0.025
BACKOFF_CAP_SECONDS = 1.0


class RecordItems(DynamoDBTable):
    """CAS records and completion counters (`CheckpointStore`'s record methods)."""

    def get_record(self, thread_id: str, key: str) -> VersionedRecord | None:
        item = self._get(thread_id, names.RECORD_PREFIX + key, "GetItem record")
        return _record_from(key, item) if item else None

    def put_record(
        self, thread_id: str, key: str, value: dict[str, Any], *, expected_version: int | None
    ) -> VersionedRecord:
        item, _ = self._record_put(thread_id, key, value, expected_version)
        try:
            self._conditional_put(item, expected_version, "PutItem record")
        except Lost as lost:
            current = _record_from(key, lost.item) if lost.item else None
            raise RecordConflict(key, current) from lost.__cause__
        return VersionedRecord(key=key, value=value, version=(expected_version or 0) + 1)

    @staticmethod
    def _record_put(
        thread_id: str, key: str, value: dict[str, Any], expected: int | None
    ) -> tuple[dict[str, AttributeValueTypeDef], dict[str, Any]]:
        """A CAS record's item (its version one past `expected`) and its put's condition."""
        item: dict[str, AttributeValueTypeDef] = {
            names.PARTITION_KEY: {"S": partition(thread_id)},
            names.SORT_KEY: {"S": names.RECORD_PREFIX + key},
            names.BODY_ATTRIBUTE: {"S": compact_json(value)},
            names.VERSION_ATTRIBUTE: {"N": str((expected or 0) + 1)},
        }
        return item, put_condition(expected)

    def get_records(self, thread_id: str, keys: Sequence[str]) -> dict[str, VersionedRecord]:
        wanted = list(dict.fromkeys(keys))  # BatchGetItem refuses a key twice in one request
        found: dict[str, VersionedRecord] = {}
        for start in range(0, len(wanted), BATCH_GET_KEYS):
            pending: list[Mapping[str, AttributeValueTypeDef]] = [
                {
                    names.PARTITION_KEY: {"S": partition(thread_id)},
                    names.SORT_KEY: {"S": names.RECORD_PREFIX + key},
                }
                for key in wanted[start : start + BATCH_GET_KEYS]
            ]
            idle = 0
            while pending:
                response = self._call(
                    "BatchGetItem records",
                    self.client.batch_get_item,
                    {
                        "RequestItems": {
                            self.table: {"Keys": pending, "ConsistentRead": True},
                        }
                    },
                )
                items = response.get("Responses", {}).get(self.table, [])
                for item in items:
                    key = item[names.SORT_KEY]["S"][len(names.RECORD_PREFIX) :]
                    found[key] = _record_from(key, item)
                pending = response.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", [])
                if pending:
                    idle = 0 if items else idle + 1
                    if idle >= BATCH_GET_IDLE_ROUNDS:
                        raise AwsUnavailable(
                            f"BatchGetItem records: {len(pending)} keys still unprocessed "
                            f"after {idle} rounds that returned nothing"
                        )
                    _backoff(idle + 1)
        return found

    def complete_task(
        self, thread_id: str, counter_key: str, member_key: str, value: dict[str, Any]
    ) -> tuple[bool, int]:
        pk = partition(thread_id)
        member: dict[str, AttributeValueTypeDef] = {
            names.PARTITION_KEY: {"S": pk},
            names.SORT_KEY: {"S": names.RECORD_PREFIX + member_key},
            names.BODY_ATTRIBUTE: {"S": compact_json(value)},
            names.VERSION_ATTRIBUTE: {"N": "1"},
        }
        actions: list[TransactWriteItemTypeDef] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": member,
                    # The member is written once: only if no item has its key yet (`pk` is on
                    # every item, so "no pk" means "no such item"). A second completion of the
                    # same task (a redelivery, a retry after a crash) fails here, and that
                    # cancels the whole transaction, so the counter is not added to twice.
                    "ConditionExpression": "attribute_not_exists(#pk)",
                    "ExpressionAttributeNames": {"#pk": names.PARTITION_KEY},
                }
            },
            {
                "Update": {
                    "TableName": self.table,
                    "Key": {
                        names.PARTITION_KEY: {"S": pk},
                        names.SORT_KEY: {"S": names.RECORD_PREFIX + counter_key},
                    },
                    # No condition of its own: ADD starts a missing counter (and its version)
                    # at 0, and the transaction applies it only when the member's Put applies.
                    "UpdateExpression": "ADD #count :one, #version :one",
                    "ExpressionAttributeNames": {
                        "#count": names.COUNT_ATTRIBUTE,
                        "#version": names.VERSION_ATTRIBUTE,
                    },
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
        ]
        created = self._transact_complete(actions)
        counter = self._get(thread_id, names.RECORD_PREFIX + counter_key, "GetItem counter")
        count = counter.get(names.COUNT_ATTRIBUTE) if counter else None
        return created, int(count["N"]) if count else 0

    def _transact_complete(self, actions: list[TransactWriteItemTypeDef]) -> bool:
        """Run complete_task's transaction: True if it applied, False if the member existed."""
        action = "TransactWriteItems complete_task"
        for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
            try:
                self.client.transact_write_items(
                    TransactItems=actions,
                    # Fresh per attempt: when botocore resends this request because an answer
                    # was lost, DynamoDB sees the token again and answers success without
                    # applying it twice, so a call that created the member still says so.
                    ClientRequestToken=uuid.uuid4().hex,
                )
                return True
            except ClientError as exc:
                reasons = cancellation_reasons(exc)
                if reasons[:1] == ["ConditionalCheckFailed"]:
                    return False  # the member exists: completed before, counted then
                if "TransactionConflict" in reasons and attempt < TRANSACTION_ATTEMPTS:
                    _backoff(attempt)  # another completion held the counter: nothing applied
                    continue
                raise translate(exc, action) from exc
            except BotoCoreError as exc:
                raise translate(exc, action) from exc
        raise AssertionError("unreachable: the last attempt returns or raises")


def _record_from(key: str, item: Item) -> VersionedRecord:
    count = item.get(names.COUNT_ATTRIBUTE)
    value = {"count": int(count["N"])} if count else json.loads(item[names.BODY_ATTRIBUTE]["S"])
    return VersionedRecord(key=key, value=value, version=int(item[names.VERSION_ATTRIBUTE]["N"]))


def _backoff(round_: int) -> None:
    """Sleep before retry round `round_` (1, 2, ...): doubling, capped, jittered."""
    ceiling = min(BACKOFF_SECONDS * 2 ** (round_ - 1), BACKOFF_CAP_SECONDS)
    time.sleep(random.uniform(ceiling / 2, ceiling))
