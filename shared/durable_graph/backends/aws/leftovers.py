"""`ports.leftovers` on the DynamoDB table: where the worker, S3-start and DLQ functions, whose
roles may not delete payload objects, leave the chunks of a lost append and the snapshot
segments a merge retired for the sweeper.

Item layout: `pk = "leftovers"` (`names.LEFTOVERS_PARTITION`, apart from every thread's),
`sk = "<ISO time>#<random hex>"` (oldest first, so `due` is one Query of the partition up to
a time), `body` = the `Leftover` as JSON. Lost appends are rare (a message run twice, a start
onto a taken id) and merges few (one per `MERGE_FANIN` snapshots of a long list, 512 steps),
so one partition takes them all. An item holds at most `REFS_PER_ITEM` refs
(some 200 bytes each), far under the item limit; a step that wrote more leaves several.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from durable_graph.backends.aws import names
from durable_graph.backends.aws.dynamodb_table import DynamoDBTable
from durable_graph.checkpoint import PayloadRef
from durable_graph.clock import Clock, SystemClock, iso
from durable_graph.ports.leftovers import Leftover, LeftoverKind

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

REFS_PER_ITEM = 500


class DynamoDBLeftovers(DynamoDBTable):
    """Leftovers in their own partition of the checkpoint table."""

    def __init__(self, client: DynamoDBClient, table_name: str, clock: Clock | None = None):
        super().__init__(client, table_name)
        self.clock = clock or SystemClock()

    def leave(
        self,
        thread_id: str,
        refs: Sequence[PayloadRef],
        *,
        step: int | None = None,
        row: str | None = None,
        kind: LeftoverKind = "lost",
    ) -> None:
        at = iso(self.clock.now())
        for start in range(0, len(refs), REFS_PER_ITEM):
            left = Leftover(
                thread_id=thread_id,
                step=step,
                row=row,
                kind=kind,
                refs=list(refs[start : start + REFS_PER_ITEM]),
                at=at,
            )
            # No condition: the random suffix makes the key new, and a retried put of this
            # very item writes it again.
            self._call(
                "PutItem leftover",
                self.client.put_item,
                {
                    "TableName": self.table,
                    "Item": {
                        names.PARTITION_KEY: {"S": names.LEFTOVERS_PARTITION},
                        names.SORT_KEY: {"S": f"{at}#{uuid.uuid4().hex}"},
                        names.BODY_ATTRIBUTE: {"S": left.model_dump_json()},
                    },
                },
            )

    def due(self, before: datetime, limit: int) -> list[Leftover]:
        response = self._call(
            "Query leftovers",
            self.client.query,
            {
                "TableName": self.table,
                "KeyConditionExpression": "#pk = :pk AND #sk < :before",
                "ExpressionAttributeNames": {
                    "#pk": names.PARTITION_KEY,
                    "#sk": names.SORT_KEY,
                },
                "ExpressionAttributeValues": {
                    ":pk": {"S": names.LEFTOVERS_PARTITION},
                    ":before": {"S": iso(before)},
                },
                "ConsistentRead": True,
                "Limit": limit,
            },
        )
        return [
            Leftover.model_validate_json(item[names.BODY_ATTRIBUTE]["S"]).model_copy(
                update={"key": item[names.SORT_KEY]["S"]}
            )
            for item in response.get("Items", [])
        ]

    def forget(self, leftover: Leftover) -> None:
        self._call(
            "DeleteItem leftover",
            self.client.delete_item,
            {
                "TableName": self.table,
                "Key": {
                    names.PARTITION_KEY: {"S": names.LEFTOVERS_PARTITION},
                    names.SORT_KEY: {"S": leftover.key},
                },
            },
        )


__all__ = ["REFS_PER_ITEM", "DynamoDBLeftovers"]
