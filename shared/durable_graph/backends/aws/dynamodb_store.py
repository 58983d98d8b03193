"""CheckpointStore on one DynamoDB table (keys and index names from `names.py`).

Item layout (partition key `pk = "thread#<thread_id>"`):

    sk = "cp#<step, 12 digits>"   one immutable checkpoint; `body` = the record as compact JSON
                                  (`S`), or zlib of it (`B`) where that saves a write unit
                                  (`item_bodies.py`)
    sk = "thread"                 the thread head record; `version` = its revision; the
                                  `gsi1pk`/`gsi1sk` attributes put it in the status index;
                                  written by `advance_thread` (one UpdateItem, no read), it
                                  also has `head_step` (its condition: forward only) and
                                  `created_at` / `origin` (kept with if_not_exists, and left
                                  out of `body`)
    sk = "rec#<key>"              a small CAS record (pending task writes, side effects, tokens):
                                  `body` = its value as compact JSON, `version` = its CAS version;
                                  a completion counter of `complete_task` has no `body` but a
                                  numeric `count` (and `version`), both grown with ADD, and
                                  reads back as `{"count": <count>}`

A plain step is ONE conditional PutItem of the new checkpoint item: no transaction, no
read-modify-write of a head item (the head is found with a reverse Query, Limit 1). The thread
item is written only when a thread's status changes. Every read is strongly consistent, so a
worker that lost a race always sees the winner. Items stay below DynamoDB's 400 KB limit by
construction: `Backend.check_record_size` refuses a checkpoint over `max_record_bytes` (350 KB)
before anything is written, after heavy values went to S3.

A lost condition comes back with the stored item (`ReturnValuesOnConditionCheckFailure=ALL_OLD`),
so `StepConflict` / `RecordConflict` carry the winner without a second read.

Fan-outs: `get_records` reads records 100 keys per BatchGetItem; `complete_task` is one
TransactWriteItems (create the member iff absent + ADD 1 to the counter) and one consistent
GetItem of the counter, however many tasks the superstep has.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from durable_graph.backends.aws import names
from durable_graph.backends.aws.errors import (
    AwsUnavailable,
    cancellation_reasons,
    error_code,
    translate,
)
from durable_graph.backends.aws.item_bodies import body_value, item_bytes, row_of, write_units
from durable_graph.canonical import compact_json
from durable_graph.checkpoint import Checkpoint, ThreadRecord, VersionedRecord
from durable_graph.errors import CorruptRecord, RecordConflict, StepConflict, StepNotFound
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
from durable_graph.ports import CommitWrites

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        QueryInputTypeDef,
        TransactWriteItemTypeDef,
    )

log = logging.getLogger("durable_graph.aws.dynamodb")

STATUSES = ("running", "suspended", "completed", "failed")
STEP_DIGITS = 12
BATCH_GET_KEYS = 100  # DynamoDB's limit of keys per BatchGetItem request
# UnprocessedKeys (throttling, the 16 MB response limit): rounds that returned nothing before
# giving up as transient, and the backoff between rounds (doubling, jittered, capped).
BATCH_GET_IDLE_ROUNDS = 8
# A complete_task transaction cancelled by a conflict (another completion holding the counter):
# attempts in-process before giving up as transient.
TRANSACTION_ATTEMPTS = 4
BACKOFF_SECONDS = 0.025
# A step is written in one transaction with its companions (thread head, signature, approval
# link) when that costs at most this many write units more than writing them apart: a
# transaction bills twice each item's units, so folding costs the row's units again (and the
# companion's, when it is the only one: several are a transaction of their own anyway). One
# request less for at most 3 units ($1.88 per million); 0 never folds.
FOLD_EXTRA_UNITS = 3
BACKOFF_CAP_SECONDS = 1.0

Item = Mapping[str, "AttributeValueTypeDef"]


def partition(thread_id: str) -> str:
    return f"thread#{thread_id}"


def checkpoint_key(step: int) -> str:
    """Zero-padded so the sort key orders steps numerically."""
    return f"{names.CHECKPOINT_PREFIX}{step:0{STEP_DIGITS}d}"


class DynamoDBCheckpointStore:
    """Implements `durable_graph.ports.CheckpointStore`.

    Args:
        client: a boto3 DynamoDB client (built by the caller: no client at import time).
        table_name: the table built from `infra.table_definition.TABLE`.
    """

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table = table_name

    # ------------------------------------------------------------------ checkpoints

    def append_checkpoint(self, checkpoint: Checkpoint) -> None:
        self._put_checkpoint(self._checkpoint_item(checkpoint), checkpoint)

    @staticmethod
    def _checkpoint_item(checkpoint: Checkpoint) -> dict[str, AttributeValueTypeDef]:
        """A step's item: its keys and its row, compressed when that saves a write unit
        (`item_bodies.py`)."""
        keys: dict[str, AttributeValueTypeDef] = {
            names.PARTITION_KEY: {"S": partition(checkpoint.thread_id)},
            names.SORT_KEY: {"S": checkpoint_key(checkpoint.step)},
        }
        size = item_bytes(keys) + len(names.BODY_ATTRIBUTE)
        return {**keys, names.BODY_ATTRIBUTE: body_value(checkpoint.to_stored_json(), size)}

    def _put_checkpoint(
        self, item: dict[str, AttributeValueTypeDef], checkpoint: Checkpoint
    ) -> None:
        try:
            self.client.put_item(
                TableName=self.table,
                Item=item,
                # The commit point of a step: write (thread, step) only if no item has that
                # key yet. `pk` exists on every item, so "no pk" means "no such item": a second
                # writer of the same step (a redelivery, a zombie, a racing resume) loses here.
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": names.PARTITION_KEY},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise translate(exc, "PutItem checkpoint") from exc
            old = _old_item(exc)
            existing = (
                self._checkpoint_from(checkpoint.thread_id, checkpoint.step, old)
                if old
                else self.get_checkpoint(checkpoint.thread_id, checkpoint.step)
            )
            raise StepConflict(checkpoint.thread_id, checkpoint.step, existing) from exc
        except BotoCoreError as exc:
            raise translate(exc, "PutItem checkpoint") from exc

    def append_with(self, checkpoint: Checkpoint, writes: CommitWrites) -> bool:
        """The step and its companions in as few requests as the price allows
        (`CombinedCommit`). A transaction bills twice the write units of every item in it, so
        the step goes in one TransactWriteItems with its companions (the thread head's
        forward-only update, then each record on its own condition) when that costs at most
        `FOLD_EXTRA_UNITS` more (`_fold_costs`): one request less. Otherwise the row is put
        alone, as `append_checkpoint` does, and its companions follow in one request of their
        own. The checkpoint's lost condition comes back with the stored item (`StepConflict`)."""
        item = self._checkpoint_item(checkpoint)
        companions = self._companion_actions(checkpoint.thread_id, writes)
        if _fold_costs(item, companions) > FOLD_EXTRA_UNITS:
            self._put_checkpoint(item, checkpoint)
            return len(companions) > 1 and self._transact_companions(companions)
        put: TransactWriteItemTypeDef = {
            "Put": {
                "TableName": self.table,
                "Item": item,
                # The commit point, as in append_checkpoint: only if no item has this key.
                "ConditionExpression": "attribute_not_exists(#pk)",
                "ExpressionAttributeNames": {"#pk": names.PARTITION_KEY},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        action = "TransactWriteItems checkpoint"
        try:
            self._transact([put, *companions])
        except ClientError as exc:
            reasons = cancellation_reasons(exc)
            if reasons[:1] == ["ConditionalCheckFailed"]:
                old = _cancelled_item(exc, 0)
                existing = (
                    self._checkpoint_from(checkpoint.thread_id, checkpoint.step, old)
                    if old
                    else self.get_checkpoint(checkpoint.thread_id, checkpoint.step)
                )
                raise StepConflict(checkpoint.thread_id, checkpoint.step, existing) from exc
            if not _only_conditions_lost(reasons):
                raise translate(exc, action) from exc
            # Only a companion's condition failed, so nothing was written: the step goes
            # alone, and the caller writes each companion on its own.
            self._put_checkpoint(item, checkpoint)
            return False
        except BotoCoreError as exc:
            raise translate(exc, action) from exc
        return True

    def _companion_actions(
        self, thread_id: str, writes: CommitWrites
    ) -> list[TransactWriteItemTypeDef]:
        """The thread head's update and each record's put, as transaction actions (the same
        requests, conditions included, as `advance_thread` and `put_record` make alone)."""
        actions: list[dict[str, Any]] = []
        if writes.head is not None:
            actions.append({"Update": self._advance_request(writes.head)})
        for record in writes.records:
            item, condition = self._record_put(
                thread_id, record.key, record.value, record.expected_version
            )
            actions.append({"Put": {"TableName": self.table, "Item": item, **condition}})
        return cast("list[TransactWriteItemTypeDef]", actions)

    def _transact_companions(self, actions: list[TransactWriteItemTypeDef]) -> bool:
        """The companions of a committed step in one transaction: False when a condition of
        one of them failed (nothing written; the caller writes each on its own)."""
        action = "TransactWriteItems companions"
        try:
            self._transact(actions)
        except ClientError as exc:
            if _only_conditions_lost(cancellation_reasons(exc)):
                return False
            raise translate(exc, action) from exc
        except BotoCoreError as exc:
            raise translate(exc, action) from exc
        return True

    def _transact(self, actions: list[TransactWriteItemTypeDef]) -> None:
        self.client.transact_write_items(
            TransactItems=actions,
            # Fresh per call: botocore's own resend of a request whose answer was lost is then
            # answered as a success without being applied twice.
            ClientRequestToken=uuid.uuid4().hex,
        )

    def get_checkpoint(self, thread_id: str, step: int) -> Checkpoint | None:
        item = self._get(thread_id, checkpoint_key(step), "GetItem checkpoint")
        return self._checkpoint_from(thread_id, step, item) if item else None

    def rewrite_checkpoint(self, checkpoint: Checkpoint) -> None:
        try:
            self.client.put_item(
                TableName=self.table,
                Item=self._checkpoint_item(checkpoint),
                # Erasure replaces a committed step's row, never creates one: the item must
                # already exist.
                ConditionExpression="attribute_exists(#pk)",
                ExpressionAttributeNames={"#pk": names.PARTITION_KEY},
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise StepNotFound(checkpoint.thread_id, checkpoint.step) from exc
            raise translate(exc, "PutItem rewritten checkpoint") from exc
        except BotoCoreError as exc:
            raise translate(exc, "PutItem rewritten checkpoint") from exc

    def head_checkpoint(self, thread_id: str) -> Checkpoint | None:
        for checkpoint in self._query_checkpoints(thread_id, newest_first=True, limit=1):
            return checkpoint
        return None

    def list_checkpoints(
        self,
        thread_id: str,
        *,
        newest_first: bool = True,
        before_step: int | None = None,
        limit: int | None = None,
    ) -> list[Checkpoint]:
        return list(
            self._query_checkpoints(
                thread_id, newest_first=newest_first, before_step=before_step, limit=limit
            )
        )

    def _query_checkpoints(
        self,
        thread_id: str,
        *,
        newest_first: bool,
        before_step: int | None = None,
        limit: int | None = None,
    ) -> Iterator[Checkpoint]:
        values: dict[str, AttributeValueTypeDef] = {":pk": {"S": partition(thread_id)}}
        if before_step is None:
            condition = "#pk = :pk AND begins_with(#sk, :prefix)"
            values[":prefix"] = {"S": names.CHECKPOINT_PREFIX}
        else:
            if before_step <= 0:
                return
            condition = "#pk = :pk AND #sk BETWEEN :low AND :high"
            values[":low"] = {"S": checkpoint_key(0)}
            values[":high"] = {"S": checkpoint_key(before_step - 1)}
        request: QueryInputTypeDef = {
            "TableName": self.table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": {"#pk": names.PARTITION_KEY, "#sk": names.SORT_KEY},
            "ExpressionAttributeValues": values,
            "ScanIndexForward": not newest_first,
            "ConsistentRead": True,
        }
        remaining = limit
        while remaining is None or remaining > 0:
            if remaining is not None:
                request["Limit"] = remaining
            page = self._call("Query checkpoints", self.client.query, request)
            for item in page.get("Items", []):
                step = int(item[names.SORT_KEY]["S"][len(names.CHECKPOINT_PREFIX) :])
                yield self._checkpoint_from(thread_id, step, item)
                if remaining is not None:
                    remaining -= 1
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    @staticmethod
    def _checkpoint_from(thread_id: str, step: int, item: Item) -> Checkpoint:
        try:
            return Checkpoint.from_stored_json(row_of(item[names.BODY_ATTRIBUTE]))
        except ValidationError as exc:
            raise CorruptRecord(thread_id, step, str(exc.errors()[0]["msg"])) from exc
        except zlib.error as exc:
            reason = f"compressed body does not inflate: {exc}"
            raise CorruptRecord(thread_id, step, reason) from exc
        except KeyError as exc:
            raise CorruptRecord(thread_id, step, f"missing attribute {exc}") from exc

    # ------------------------------------------------------------------ thread records

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
        except _Lost as lost:
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

    # ------------------------------------------------------------------ CAS records

    def get_record(self, thread_id: str, key: str) -> VersionedRecord | None:
        item = self._get(thread_id, names.RECORD_PREFIX + key, "GetItem record")
        return _record_from(key, item) if item else None

    def put_record(
        self, thread_id: str, key: str, value: dict[str, Any], *, expected_version: int | None
    ) -> VersionedRecord:
        item, _ = self._record_put(thread_id, key, value, expected_version)
        try:
            self._conditional_put(item, expected_version, "PutItem record")
        except _Lost as lost:
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
        return item, _put_condition(expected)

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

    # ------------------------------------------------------------------ helpers

    def _conditional_put(
        self, item: dict[str, AttributeValueTypeDef], expected: int | None, action: str
    ) -> None:
        request: dict[str, Any] = {
            "TableName": self.table,
            "Item": item,
            **_put_condition(expected),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        try:
            self.client.put_item(**request)
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise translate(exc, action) from exc
            raise _Lost(_old_item(exc)) from exc
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


def _put_condition(expected: int | None) -> dict[str, Any]:
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


class _Lost(Exception):
    """Internal: a conditional put lost; carries the stored item (or None)."""

    def __init__(self, item: Item | None) -> None:
        super().__init__("condition failed")
        self.item = item


def _old_item(exc: ClientError) -> Item | None:
    """The stored item a lost condition returned (`ReturnValuesOnConditionCheckFailure`)."""
    item: Any = exc.response.get("Item")  # not in botocore's error shape, but sent by DynamoDB
    return item if isinstance(item, Mapping) and item else None


def _fold_costs(item: Item, companions: Sequence[Mapping[str, Any]]) -> int:
    """Write units a transaction of the step and its companions costs beyond writing them
    apart: the row's units again, and the companion's when it is the only one (several go
    in a transaction of their own anyway, billed twice either way). An update's item is
    estimated from its key and values."""
    if not companions:
        return 0
    extra = write_units(item)
    if len(companions) == 1:
        only = companions[0]
        if "Put" in only:
            extra += write_units(only["Put"]["Item"])
        else:
            update = only["Update"]
            extra += write_units({**update["Key"], **update["ExpressionAttributeValues"]})
    return extra


def _only_conditions_lost(reasons: list[str]) -> bool:
    """A cancelled transaction in which nothing but conditions failed (no conflict with
    another transaction, no throttling): retrying it as it is would fail the same way."""
    return "ConditionalCheckFailed" in reasons and all(
        r in ("None", "ConditionalCheckFailed") for r in reasons
    )


def _cancelled_item(exc: ClientError, index: int) -> Item | None:
    """The stored item a transaction's `index`-th action found when its condition failed."""
    reasons: Any = exc.response.get("CancellationReasons")
    if not isinstance(reasons, list) or len(reasons) <= index:
        return None
    item: Any = reasons[index].get("Item") if isinstance(reasons[index], dict) else None
    return item if isinstance(item, Mapping) and item else None


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


def _record_from(key: str, item: Item) -> VersionedRecord:
    count = item.get(names.COUNT_ATTRIBUTE)
    value = {"count": int(count["N"])} if count else json.loads(item[names.BODY_ATTRIBUTE]["S"])
    return VersionedRecord(key=key, value=value, version=int(item[names.VERSION_ATTRIBUTE]["N"]))


def _backoff(round_: int) -> None:
    """Sleep before retry round `round_` (1, 2, ...): doubling, capped, jittered."""
    ceiling = min(BACKOFF_SECONDS * 2 ** (round_ - 1), BACKOFF_CAP_SECONDS)
    time.sleep(random.uniform(ceiling / 2, ceiling))
