"""The thread items of the DynamoDB store: the head record of each thread (`sk = "thread"`),
written forward-only with one UpdateItem (`advance_thread`, no read) or by compare-and-set
(`put_thread`), and listed through the status index (one partition per status)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from durable_graph.backends.aws import names
from durable_graph.backends.aws.dynamodb_table import DynamoDBTable, Item, Lost, partition
from durable_graph.backends.aws.errors import error_code, translate
from durable_graph.checkpoint import ThreadRecord
from durable_graph.errors import RecordConflict
from durable_graph.listing import (
    Key,
    ThreadPage,
    after,
    check_query,
    cut,
    decode_cursor,
    key_of,
    matches,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, QueryInputTypeDef

STATUSES = ("running", "suspended", "completed", "failed")


class ThreadItems(DynamoDBTable):
    """Thread head records (`CheckpointStore`'s thread methods)."""

    def get_thread(self, thread_id: str) -> ThreadRecord | None:
        item = self._get(thread_id, names.THREAD_SORT_KEY, "GetItem thread")
        return _thread_from(item) if item else None

    def put_thread(self, record: ThreadRecord, *, expected_revision: int | None) -> ThreadRecord:
        stored = record.model_copy(update={"revision": (expected_revision or 0) + 1})
        item: dict[str, AttributeValueTypeDef] = {
            names.PARTITION_KEY: {"S": partition(record.thread_id)},
            names.SORT_KEY: {"S": names.THREAD_SORT_KEY},
            names.BODY_ATTRIBUTE: {"S": stored.model_dump_json()},
            names.VERSION_ATTRIBUTE: {"N": str(stored.revision)},
            names.STATUS_INDEX_PK: {"S": f"status#{stored.status}"},
            names.STATUS_INDEX_SK: {"S": stored.updated_at},
        }
        try:
            self._conditional_put(item, expected_revision, "PutItem thread")
        except Lost as lost:
            current = _thread_from(lost.item) if lost.item else None
            raise RecordConflict(f"thread#{record.thread_id}", current) from lost.__cause__
        return stored

    def advance_thread(self, record: ThreadRecord) -> bool:
        try:
            self.client.update_item(**self._advance_request(record))
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise translate(exc, "UpdateItem thread") from exc
            return False
        except BotoCoreError as exc:
            raise translate(exc, "UpdateItem thread") from exc
        return True

    def _advance_request(self, record: ThreadRecord) -> dict[str, Any]:
        """The forward-only UpdateItem of the thread head (alone, or in a transaction)."""
        values: dict[str, AttributeValueTypeDef] = {
            ":body": {"S": record.model_dump_json(exclude={"revision", "created_at", "origin"})},
            ":head": {"N": str(record.head_step)},
            ":gpk": {"S": f"status#{record.status}"},
            ":gsk": {"S": record.updated_at},
            ":created": {"S": record.created_at},
            ":zero": {"N": "0"},
            ":one": {"N": "1"},
        }
        update = (
            "SET #body = :body, #head = :head, #gpk = :gpk, #gsk = :gsk, "
            "#created = if_not_exists(#created, :created), "
            "#version = if_not_exists(#version, :zero) + :one"
        )
        if record.origin is not None:
            update += ", #origin = if_not_exists(#origin, :origin)"
            values[":origin"] = {"S": record.origin.model_dump_json()}
        request: dict[str, Any] = {
            "TableName": self.table,
            "Key": {
                names.PARTITION_KEY: {"S": partition(record.thread_id)},
                names.SORT_KEY: {"S": names.THREAD_SORT_KEY},
            },
            "UpdateExpression": update,
            # Forward only: no head yet (a new thread, or one written before head_step was an
            # attribute), or an older one. A late writer of an older step loses quietly.
            "ConditionExpression": "attribute_not_exists(#head) OR #head < :head",
            "ExpressionAttributeNames": {
                "#body": names.BODY_ATTRIBUTE,
                "#head": names.HEAD_STEP_ATTRIBUTE,
                "#gpk": names.STATUS_INDEX_PK,
                "#gsk": names.STATUS_INDEX_SK,
                "#created": names.CREATED_ATTRIBUTE,
                "#version": names.VERSION_ATTRIBUTE,
                **({"#origin": names.ORIGIN_ATTRIBUTE} if record.origin is not None else {}),
            },
            "ExpressionAttributeValues": values,
        }
        return request

    def list_threads(self, *, status: str | None = None, limit: int = 1000) -> list[ThreadRecord]:
        """Oldest status change first. Without `status`, merges the four status partitions of
        the index (a Query each) rather than scanning the table."""
        found: list[ThreadRecord] = []
        for wanted in [status] if status is not None else list(STATUSES):
            request: QueryInputTypeDef = {
                "TableName": self.table,
                "IndexName": names.STATUS_INDEX,
                "KeyConditionExpression": "#gpk = :status",
                "ExpressionAttributeNames": {"#gpk": names.STATUS_INDEX_PK},
                "ExpressionAttributeValues": {":status": {"S": f"status#{wanted}"}},
                "ScanIndexForward": True,
                "Limit": limit,
            }
            taken = 0
            while taken < limit:
                page = self._call("Query status index", self.client.query, request)
                for item in page.get("Items", []):
                    record = _thread_from(item)
                    # The index is eventually consistent: skip an entry whose status moved on.
                    if record.status == wanted:
                        found.append(record)
                        taken += 1
                last = page.get("LastEvaluatedKey")
                if not last:
                    break
                request["ExclusiveStartKey"] = last
        found.sort(key=lambda r: r.updated_at)
        return found[:limit]

    def page_threads(
        self,
        *,
        status: str | None = None,
        prefix: str = "",
        newest_first: bool = True,
        limit: int = 50,
        cursor: str | None = None,
    ) -> ThreadPage:
        """A Query per status partition of the index, each starting at the cursor's
        `updated_at` and stopping once it holds `limit + 1` records past the cursor; the
        partitions are merged in order. A prefix is filtered here: the index is not keyed by
        thread id (an exact id is a `get_thread`)."""
        check_query(status, limit)
        start = decode_cursor(cursor)
        found: list[ThreadRecord] = []
        for wanted in [status] if status is not None else list(STATUSES):
            found += self._status_page(wanted, prefix, newest_first, limit + 1, start)
        found.sort(key=key_of, reverse=newest_first)
        return cut(found, limit)

    def _status_page(
        self, status: str, prefix: str, newest_first: bool, count: int, start: Key | None
    ) -> list[ThreadRecord]:
        condition = "#gpk = :status"
        values: dict[str, AttributeValueTypeDef] = {":status": {"S": f"status#{status}"}}
        if start is not None:
            condition += f" AND #gsk {'<=' if newest_first else '>='} :updated"
            values[":updated"] = {"S": start[0]}
        request: QueryInputTypeDef = {
            "TableName": self.table,
            "IndexName": names.STATUS_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": {
                "#gpk": names.STATUS_INDEX_PK,
                **({"#gsk": names.STATUS_INDEX_SK} if start is not None else {}),
            },
            "ExpressionAttributeValues": values,
            "ScanIndexForward": not newest_first,
        }
        found: list[ThreadRecord] = []
        while len(found) < count:
            page = self._call("Query status index", self.client.query, request)
            for item in page.get("Items", []):
                record = _thread_from(item)
                # The index is eventually consistent: skip an entry whose status moved on.
                if matches(record, status, prefix) and after(key_of(record), start, newest_first):
                    found.append(record)
            last = page.get("LastEvaluatedKey")
            if not last:
                break
            request["ExclusiveStartKey"] = last
        return found


def _thread_from(item: Item) -> ThreadRecord:
    """A thread item: its body, with the revision, and (when `advance_thread` wrote it) the
    creation time and origin it keeps beside the body."""
    doc = json.loads(item[names.BODY_ATTRIBUTE]["S"])
    doc["revision"] = int(item[names.VERSION_ATTRIBUTE]["N"])
    created = item.get(names.CREATED_ATTRIBUTE)
    if created is not None:
        doc["created_at"] = created["S"]
    origin = item.get(names.ORIGIN_ATTRIBUTE)
    if origin is not None:
        doc["origin"] = json.loads(origin["S"])
    return ThreadRecord.model_validate(doc)
