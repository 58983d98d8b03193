"""What an AWS store holds, read from moto's storage: every item of the table (DynamoDB's size
of each, `item_bodies.item_bytes`) and every object of the payload bucket, by content type.
The 2x-raw budget's measure (`bench/long_threads.py aws-chat`,
`tests/aws/test_retired_segments.py`), for a store holding one thread."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from durable_graph.backend import Backend
from durable_graph.backends.aws.dynamodb_table import DynamoDBTable
from durable_graph.backends.aws.item_bodies import item_bytes
from durable_graph.backends.aws.s3_payloads import S3PayloadStore
from durable_graph.sealed_payloads import raw_payloads


@dataclass(frozen=True)
class Stored:
    items: int  # bytes of the table's items
    objects: int  # bytes of every payload object
    by_type: dict[str, int] = field(default_factory=dict)  # object bytes per content type

    @property
    def total(self) -> int:
        return self.items + self.objects


def stored(backend: Backend) -> Stored:
    """The bytes `backend` (on moto) stores in its whole table and bucket."""
    payloads = raw_payloads(backend.payloads)
    store = backend.checkpoints.inner
    assert isinstance(payloads, S3PayloadStore) and isinstance(store, DynamoDBTable)
    items = 0
    for scanned in store.client.get_paginator("scan").paginate(TableName=store.table):
        items += sum(item_bytes(item) for item in scanned.get("Items", []))
    by_type: Counter[str] = Counter()
    client, bucket = payloads.client, payloads.bucket
    for listed in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for found in listed.get("Contents", []):
            head = client.head_object(Bucket=bucket, Key=found["Key"])
            by_type[head.get("ContentType", "?")] += int(found["Size"])
    return Stored(
        items=items,
        objects=sum(by_type.values()),
        by_type=dict(by_type),
    )
