"""A DynamoDB checkpoint item keeps its row compressed where that saves a write unit, and a
step folds its companions into one transaction only where that costs few write units
(`item_bodies.py`, `DynamoDBCheckpointStore.append_with`), on moto."""

from __future__ import annotations

import base64
import random
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from durable_graph.backends.aws import dynamodb_store, names
from durable_graph.backends.aws.dynamodb_store import DynamoDBCheckpointStore
from durable_graph.backends.aws.item_bodies import body_value, item_bytes, write_units
from durable_graph.errors import CorruptRecord
from durable_graph.ports.commit_writes import CommitWrites, RecordWrite
from tests.aws.resources import clients, create_resources, stored_row
from tests.helpers import checkpoint, thread_record


def words(size: int) -> str:
    """Text that compresses like prose (lowercase words), `size` characters."""
    rng = random.Random(size)
    return " ".join(
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9)))
        for _ in range(size // 4)
    )[:size]


def noise(size: int) -> str:
    """Text zlib cannot shrink by much (base64 of random bytes)."""
    return base64.b64encode(random.Random(size).randbytes(size)).decode()[:size]


@pytest.fixture
def table() -> Iterator[tuple[DynamoDBCheckpointStore, Any, str, list[str]]]:
    """The raw store, the client, the table name, and the operations made."""
    with mock_aws():
        aws = clients()
        resources = create_resources(aws)
        calls: list[str] = []
        aws.dynamodb.meta.events.register(
            "provide-client-params.dynamodb", lambda model, **_: calls.append(model.name)
        )
        name = resources.settings.table_name
        yield DynamoDBCheckpointStore(aws.dynamodb, name), aws.dynamodb, name, calls


def item(client: Any, table: str, thread_id: str, step: int) -> dict[str, Any]:
    key = {
        names.PARTITION_KEY: {"S": f"thread#{thread_id}"},
        names.SORT_KEY: {"S": dynamodb_store.checkpoint_key(step)},
    }
    found: dict[str, Any] = client.get_item(TableName=table, Key=key)["Item"]
    return found


def test_a_row_over_one_write_unit_is_compressed_where_that_is_smaller(
    table: tuple[DynamoDBCheckpointStore, Any, str, list[str]],
) -> None:
    """Given a small row, a 3 KB row of words and a 1.6 KB row of random text (two write
    units, compressed or not)
    When each is appended
    Then the small one stays JSON text, the words are zlib bytes billed fewer write units, the
    random one zlib bytes billed as many but fewer bytes stored, and all three read back
    equal, alone and in the history."""
    store, client, name, _ = table
    rows = [
        checkpoint("t", 0),
        checkpoint("t", 1, {"text": words(3000)}),
        checkpoint("t", 2, {"text": noise(1200)}),
    ]
    for row in rows:
        store.append_checkpoint(row)
    small, prose, random_ = (item(client, name, "t", s) for s in range(3))
    assert "S" in small[names.BODY_ATTRIBUTE]
    packed = prose[names.BODY_ATTRIBUTE]["B"]
    assert zlib.decompress(packed).decode() == rows[1].to_stored_json() == stored_row(prose)
    text_item = {**prose, names.BODY_ATTRIBUTE: {"S": rows[1].to_stored_json()}}
    assert write_units(prose) < write_units(text_item)
    noisy = random_[names.BODY_ATTRIBUTE]["B"]
    assert zlib.decompress(noisy).decode() == rows[2].to_stored_json() == stored_row(random_)
    text_item = {**random_, names.BODY_ATTRIBUTE: {"S": rows[2].to_stored_json()}}
    assert write_units(random_) == write_units(text_item) == 2
    assert item_bytes(random_) < item_bytes(text_item)
    assert [store.get_checkpoint("t", s) for s in range(3)] == rows
    assert store.list_checkpoints("t", newest_first=False) == rows
    assert store.head_checkpoint("t") == rows[2]


def test_rows_stored_as_text_before_compression_still_read(
    table: tuple[DynamoDBCheckpointStore, Any, str, list[str]],
) -> None:
    """Given a big row written as JSON text (as every row was before compression)
    Then it reads back as it was."""
    store, client, name, _ = table
    row = checkpoint("t", 0, {"text": words(5000)})
    key = item_key("t", 0)
    client.put_item(TableName=name, Item={**key, "body": {"S": row.to_stored_json()}})
    assert store.get_checkpoint("t", 0) == row


def test_a_damaged_compressed_row_is_a_corrupt_record(
    table: tuple[DynamoDBCheckpointStore, Any, str, list[str]],
) -> None:
    """Given a compressed row whose bytes were damaged
    Then reading it raises CorruptRecord naming the step and why."""
    store, client, name, _ = table
    store.append_checkpoint(checkpoint("t", 0, {"text": words(4000)}))
    stored = item(client, name, "t", 0)
    damaged = b"\x00" + bytes(stored[names.BODY_ATTRIBUTE]["B"])[1:]
    client.put_item(TableName=name, Item={**stored, "body": {"B": damaged}})
    with pytest.raises(CorruptRecord, match=r"step 0.*does not inflate"):
        store.get_checkpoint("t", 0)


def item_key(thread_id: str, step: int) -> dict[str, Any]:
    return {
        names.PARTITION_KEY: {"S": f"thread#{thread_id}"},
        names.SORT_KEY: {"S": dynamodb_store.checkpoint_key(step)},
    }


def test_body_value_keeps_small_rows_as_text() -> None:
    """A row that fits one write unit is never compressed (nothing to save), however well
    it would compress."""
    assert body_value("x" * 900, 60) == {"S": "x" * 900}
    assert "B" in body_value("x" * 1000, 60)


FOLD_CASES: dict[str, tuple[dict[str, Any], int, list[str]]] = {
    # extra units of folding = the row's units + the only companion's: 1 + 1
    "a small row and its head fold": ({"n": 1}, 1, ["TransactWriteItems"]),
    # a 3-unit row (random text) and its only companion: 3 + 1 > 3
    "a big row with one companion goes alone": (
        {"text": noise(2500)},
        0,
        ["PutItem", "UpdateItem"],
    ),
    # the same row with two companions: 3 (the companions are a transaction either way)
    "a big row with two companions folds": ({"text": noise(2500)}, 1, ["TransactWriteItems"]),
    # a 5-unit row: 5 > 3, its two companions follow in one transaction
    "a bigger row goes alone, its companions together": (
        {"text": noise(4500)},
        1,
        ["PutItem", "TransactWriteItems"],
    ),
}


@pytest.mark.parametrize("case", sorted(FOLD_CASES))
def test_a_step_folds_its_companions_only_when_that_costs_few_write_units(
    case: str, table: tuple[DynamoDBCheckpointStore, Any, str, list[str]]
) -> None:
    """Given a step with its thread head (and a signature record, where the case says)
    When it is appended
    Then the requests made are one transaction, or the row alone and its companions after,
    as `FOLD_EXTRA_UNITS` decides; either way all of them are stored."""
    store, _, _, calls = table
    values, records, expected = FOLD_CASES[case]
    step = checkpoint("t", 0, values, status="suspended")
    signature = (RecordWrite("sig#0", {"by": "key"}),) * records
    writes = CommitWrites(head=thread_record("t", "suspended", head=0), records=signature)
    written = store.append_with(step, writes)
    if not written:  # the caller writes what was not (one companion: it goes alone)
        assert writes.head is not None
        store.advance_thread(writes.head)
    assert calls == expected
    assert store.get_checkpoint("t", 0) == step
    head = store.get_thread("t")
    assert head is not None and head.head_step == 0
    assert (store.get_record("t", "sig#0") is not None) == bool(records)
