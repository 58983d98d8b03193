"""moto without its O(queue) and O(table) work per request, for fan-outs of 10,000 tasks.

moto is the AWS test double; a few of its internals cost time proportional to everything it
holds, on every request, which real AWS does not:

- `TransactWriteItems` deep-copies every table it touches before it starts (a rollback
  backup): O(items in the table) per transaction, so a 10,000-task fan-in, one transaction per
  task, is quadratic;
- every SQS `SendMessage(Batch)` reads the queue's `attributes`, which counts the visible,
  in-flight and delayed messages by scanning the queue, and each message's visibility check
  builds two `datetime`s.

`scaled_moto()` replaces these for the duration of a `with` block, keeping what they do:
a transaction's backup is the prior image of the items it names (restored if it fails, as
moto restores the tables), queue counts are computed only for `GetQueueAttributes`, and the
clock moto reads is `time.time()` (what its `utcnow` returns, without the `datetime`
round-trip). Requests and their results are unchanged: the benchmarks count requests with
botocore hooks, before moto sees them. Bench-only; tests use moto as it is.
"""

from __future__ import annotations

import copy
import importlib
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import SimpleNamespace
from typing import Any


@contextmanager
def scaled_moto() -> Iterator[None]:
    # moto's internals, typed loosely: this patches them
    ddb_models: Any = importlib.import_module("moto.dynamodb.models")
    sqs_models: Any = importlib.import_module("moto.sqs.models")
    dynamo_type: Any = importlib.import_module("moto.dynamodb.models.dynamo_type").DynamoType

    backend_cls = ddb_models.DynamoDBBackend
    original_transact = backend_cls.transact_write_items
    queue_cls = sqs_models.Queue
    original_attributes = queue_cls.attributes
    original_get_attributes = sqs_models.SQSBackend.get_queue_attributes
    original_clock = sqs_models.unix_time_millis
    counting = {"on": False}
    counts = (
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesDelayed",
        "ApproximateNumberOfMessagesNotVisible",
    )

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        before: list[tuple[Any, Any, Any, Any]] = []
        for item in transact_items:
            op_type, op = next(iter(item.items()))
            if op.get("TableName") not in self.tables:
                continue
            table = self.tables[op["TableName"]]
            key = op["Item"] if op_type == "Put" else op.get("Key", {})
            if table.hash_key_attr not in key:
                continue
            hash_key = dynamo_type(key[table.hash_key_attr])
            range_key = None
            if table.range_key_attr is not None:
                if table.range_key_attr not in key:
                    continue
                range_key = dynamo_type(key[table.range_key_attr])
            old = table.get_item(hash_key, range_key)
            before.append((table, hash_key, range_key, copy.deepcopy(old)))
        saved = ddb_models.copy
        ddb_models.copy = SimpleNamespace(deepcopy=lambda table: table)
        try:
            original_transact(self, transact_items)
        except Exception:
            for table, hash_key, range_key, old in reversed(before):
                if old is None:
                    with suppress(KeyError):
                        if range_key is not None:
                            table.items[hash_key].pop(range_key)
                        else:
                            table.items.pop(hash_key)
                elif range_key is not None:
                    table.items[hash_key][range_key] = old
                else:
                    table.items[hash_key] = old
            raise
        finally:
            ddb_models.copy = saved

    def counted(name: str) -> property:
        real = getattr(queue_cls, name)
        return property(lambda queue: real.fget(queue) if counting["on"] else 0)

    def attributes(self: Any) -> dict[str, Any]:
        result: dict[str, Any] = dict(original_attributes.fget(self))
        if not counting["on"]:
            for name in counts:
                result.pop(name, None)
        return result

    def get_queue_attributes(self: Any, *args: Any, **kwargs: Any) -> Any:
        counting["on"] = True
        try:
            return original_get_attributes(self, *args, **kwargs)
        finally:
            counting["on"] = False

    originals = {name: getattr(queue_cls, name) for name in _count_properties()}
    for name in originals:
        setattr(queue_cls, name, counted(name))
    backend_cls.transact_write_items = transact_write_items
    queue_cls.attributes = property(attributes)
    sqs_models.SQSBackend.get_queue_attributes = get_queue_attributes
    sqs_models.unix_time_millis = lambda: time.time() * 1000
    try:
        yield
    finally:
        backend_cls.transact_write_items = original_transact
        queue_cls.attributes = original_attributes
        sqs_models.SQSBackend.get_queue_attributes = original_get_attributes
        sqs_models.unix_time_millis = original_clock
        for name, prop in originals.items():
            setattr(queue_cls, name, prop)


def _count_properties() -> tuple[str, ...]:
    return (
        "approximate_number_of_messages",
        "approximate_number_of_messages_delayed",
        "approximate_number_of_messages_not_visible",
    )


__all__ = ["scaled_moto"]
