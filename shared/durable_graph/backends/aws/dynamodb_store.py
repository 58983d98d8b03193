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

import logging
import uuid
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from durable_graph.backends.aws import names
from durable_graph.backends.aws.dynamodb_records import RecordItems
from durable_graph.backends.aws.dynamodb_table import Item, old_item, partition
from durable_graph.backends.aws.dynamodb_threads import ThreadItems
from durable_graph.backends.aws.errors import (
    cancellation_reasons,
    error_code,
    translate,
)
from durable_graph.backends.aws.item_bodies import body_value, item_bytes, row_of, write_units
from durable_graph.checkpoint import Checkpoint
from durable_graph.errors import CorruptRecord, StepConflict, StepNotFound
from durable_graph.ports.commit_writes import CommitWrites

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        QueryInputTypeDef,
        TransactWriteItemTypeDef,
    )

log = logging.getLogger("durable_graph.aws.dynamodb")

STEP_DIGITS = 12
# A step is written in one transaction with its companions (thread head, signature, approval
# link) when that costs at most this many write units more than writing them apart: a
# transaction bills twice each item's units, so folding costs the row's units again (and the
# companion's, when it is the only one: several are a transaction of their own anyway). One
# request less for at most 3 units ($1.88 per million); 0 never folds.
FOLD_EXTRA_UNITS = 3


def checkpoint_key(step: int) -> str:
    """Zero-padded so the sort key orders steps numerically."""
    return f"{names.CHECKPOINT_PREFIX}{step:0{STEP_DIGITS}d}"


class DynamoDBCheckpointStore(ThreadItems, RecordItems):
    """Implements `durable_graph.ports.checkpoint_store`: the checkpoints here, thread records
    (`dynamodb_threads.py`) and CAS records (`dynamodb_records.py`) on the same table.

    Args:
        client: a boto3 DynamoDB client (built by the caller: no client at import time).
        table_name: the table built from `infra.table_definition.TABLE`.
    """

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
            old = old_item(exc)
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

    def _transact(self, actions: list[TransactWriteItemTypeDef]) -> None:
        self.client.transact_write_items(
            TransactItems=actions,
            # Fresh per call: botocore's own resend of a request whose answer was lost is then
            # answered as a success without being applied twice.
            ClientRequestToken=uuid.uuid4().hex,
        )


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
