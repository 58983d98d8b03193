"""What the DynamoDB store promises beyond the conformance suite: the request pattern (one
conditional write per step, strongly consistent reads, the winner carried by a lost condition
without another read), the item layout, and tampering detected by `verify`."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from durable_graph.backend import Backend
from durable_graph.backends.aws import dynamodb_records
from durable_graph.backends.aws.dynamodb_store import DynamoDBCheckpointStore
from durable_graph.backends.aws.factory import aws_backend
from durable_graph.backends.aws.local_poller import InvocationCrashed
from durable_graph.backends.aws.s3_payloads import S3PayloadStore
from durable_graph.errors import CorruptRecord, StepConflict, TransientError
from durable_graph.verification import verify_thread
from tests.aws.faults import Fault
from tests.aws.resources import Resources, clients, create_resources, stored_row
from tests.helpers import checkpoint


class Recorder:
    """Every DynamoDB request: operation and parameters."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.calls.append((model.name, params))


@pytest.fixture
def setup() -> Iterator[tuple[Backend, Resources, Recorder, Any]]:
    with mock_aws():
        aws = clients()
        resources = create_resources(aws)
        backend = aws_backend(resources.settings, aws)
        recorder = Recorder()
        aws.dynamodb.meta.events.register("provide-client-params.dynamodb", recorder)
        yield backend, resources, recorder, aws


def test_a_step_is_one_conditional_put_and_reads_are_consistent(
    setup: tuple[Backend, Resources, Recorder, Any],
) -> None:
    """Given a thread, then appending a step is exactly one PutItem conditioned on the item's
    absence, and reading the head is one consistent Query, newest first, limited to one."""
    backend, _, recorder, _ = setup
    store = backend.checkpoints
    store.append_checkpoint(checkpoint("t", 0))
    assert [name for name, _ in recorder.calls] == ["PutItem"]
    put = recorder.calls[0][1]
    assert put["ConditionExpression"] == "attribute_not_exists(#pk)"
    assert put["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"
    assert put["Item"]["sk"]["S"] == "cp#000000000000"

    recorder.calls.clear()
    store.head_checkpoint("t")
    store.get_checkpoint("t", 0)
    [(query, q), (get, g)] = recorder.calls
    assert (query, get) == ("Query", "GetItem")
    assert q["ConsistentRead"] and g["ConsistentRead"]
    assert (q["ScanIndexForward"], q["Limit"]) == (False, 1)


def test_a_lost_step_carries_the_winner_without_another_read(
    setup: tuple[Backend, Resources, Recorder, Any],
) -> None:
    backend, _, recorder, _ = setup
    winner = checkpoint("t", 0, {"who": "winner"})
    backend.checkpoints.append_checkpoint(winner)
    recorder.calls.clear()
    with pytest.raises(StepConflict) as caught:
        backend.checkpoints.append_checkpoint(checkpoint("t", 0, {"who": "loser"}))
    assert caught.value.existing == winner
    assert [name for name, _ in recorder.calls] == ["PutItem"]


def test_history_pages_through_query_pages(setup: tuple[Backend, Resources, Recorder, Any]) -> None:
    """Given checkpoints larger than one 1 MB Query page, then listing returns all of them."""
    backend, _, _, _ = setup
    store = backend.checkpoints
    prev = "0" * 64
    for step in range(8):
        # Random bytes: a repeated character would compress far below one page.
        blob = random.Random(step).randbytes(150_000).hex()
        record = checkpoint("big", step, {"blob": blob}, prev_hash=prev)
        store.append_checkpoint(record)
        prev = record.hash
    assert [c.step for c in store.list_checkpoints("big", newest_first=False)] == list(range(8))
    assert [c.step for c in store.list_checkpoints("big", before_step=6, limit=3)] == [5, 4, 3]


def test_tampering_with_a_record_or_a_payload_is_detected(
    setup: tuple[Backend, Resources, Recorder, Any],
) -> None:
    """Given a verified thread, when someone with write access edits a checkpoint item or
    overwrites a payload object, then verify names the step and the check that failed; an
    item edited into garbage reads as a corrupt record."""
    backend, resources, _, aws = setup
    table = resources.settings.table_name
    backend.offload_threshold = 1024
    from examples.email_approval import graph

    app = graph.with_backend(backend)
    app.invoke({"user_prompt": "p" * 5000}, thread_id="tamper-1")
    app.resume("tamper-1", values={"approved": False}, as_node="human_review")
    assert app.get_state("tamper-1").values["outcome"] == "rejected"
    assert verify_thread(backend, "tamper-1").ok

    key = {"pk": {"S": "thread#tamper-1"}, "sk": {"S": "cp#000000000002"}}
    body = stored_row(aws.dynamodb.get_item(TableName=table, Key=key)["Item"])
    assert '"v":false' in body  # the human's decision, as the change of `approved`
    aws.dynamodb.put_item(
        TableName=table, Item={**key, "body": {"S": body.replace('"v":false', '"v":true')}}
    )
    report = verify_thread(backend, "tamper-1")
    assert (report.ok, report.first_bad_step, report.check) == (False, 2, "state")
    aws.dynamodb.put_item(
        TableName=table,
        Item={**key, "body": {"S": body.replace('"source":"update"', '"source":"node"')}},
    )
    report = verify_thread(backend, "tamper-1")
    assert (report.ok, report.first_bad_step, report.check) == (False, 2, "hash")

    aws.dynamodb.put_item(TableName=table, Item={**key, "body": {"S": "{not json"}})
    with pytest.raises(CorruptRecord, match="step 2"):
        DynamoDBCheckpointStore(aws.dynamodb, table).get_checkpoint("tamper-1", 2)

    aws.dynamodb.put_item(TableName=table, Item={**key, "body": {"S": body}})
    first = backend.checkpoints.get_checkpoint("tamper-1", 0)
    assert first is not None
    ref = first.changes["user_prompt"].ref  # the 5 KB prompt's chunk, in S3 under its digest
    assert ref is not None and isinstance(backend.payloads, S3PayloadStore)
    aws.s3.put_object(
        Bucket=resources.settings.bucket,
        Key=backend.payloads.key_for(ref.sha256),
        Body=b"q" * 5000,
    )
    report = verify_thread(backend, "tamper-1")
    assert (report.ok, report.first_bad_step, report.check) == (False, 0, "payload")


def test_get_records_is_one_batch_get_per_hundred_keys(
    setup: tuple[Backend, Resources, Recorder, Any],
) -> None:
    """Given 250 records, when all are read with get_records, then it costs 3 strongly
    consistent BatchGetItem requests (100 + 100 + 50 keys) and nothing else."""
    backend, _, recorder, _ = setup
    store = backend.checkpoints
    keys = [f"w#{i:03d}" for i in range(250)]
    for key in keys:
        store.put_record("fan", key, {"k": key}, expected_version=None)
    recorder.calls.clear()

    found = store.get_records("fan", keys)

    assert sorted(found) == keys
    assert [name for name, _ in recorder.calls] == ["BatchGetItem"] * 3
    batches = [params["RequestItems"] for _, params in recorder.calls]
    assert [len(b[t]["Keys"]) for b in batches for t in b] == [100, 100, 50]
    assert all(b[t]["ConsistentRead"] for b in batches for t in b)


def test_get_records_retries_unprocessed_keys(
    setup: tuple[Backend, Resources, Recorder, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given DynamoDB answers the first BatchGetItem with 60 of its 100 keys unprocessed (as it
    does when throttled), then get_records asks again for exactly those 60 and returns all."""
    backend, resources, recorder, aws = setup
    monkeypatch.setattr(dynamodb_records, "_backoff", lambda _round: None)
    store = backend.checkpoints
    keys = [f"w#{i:03d}" for i in range(100)]
    for key in keys:
        store.put_record("fan", key, {"k": key}, expected_version=None)
    table = resources.settings.table_name
    answered = {"first": True}

    def hold_back(parsed: dict[str, Any], **_: Any) -> None:
        if answered.pop("first", False):
            items = parsed["Responses"][table]
            held = items[40:]
            parsed["Responses"][table] = items[:40]
            parsed["UnprocessedKeys"] = {
                table: {"Keys": [{"pk": i["pk"], "sk": i["sk"]} for i in held]}
            }

    aws.dynamodb.meta.events.register("after-call.dynamodb.BatchGetItem", hold_back)
    recorder.calls.clear()

    found = store.get_records("fan", keys)

    assert sorted(found) == keys
    sizes = [len(p["RequestItems"][table]["Keys"]) for _, p in recorder.calls]
    assert sizes == [100, 60]


def test_complete_task_is_one_transaction_and_one_read(
    setup: tuple[Backend, Resources, Recorder, Any],
) -> None:
    """Given a fan-out counter, then completing a task costs one TransactWriteItems (the member
    created iff absent, the counter ADDed) and one consistent GetItem of the counter; a repeat
    of the same member costs the same two requests and changes nothing."""
    backend, _, recorder, _ = setup
    store = backend.checkpoints

    assert store.complete_task("t", "done", "done#a", {"out": 1}) == (True, 1)

    assert [name for name, _ in recorder.calls] == ["TransactWriteItems", "GetItem"]
    put, update = recorder.calls[0][1]["TransactItems"]
    assert put["Put"]["ConditionExpression"] == "attribute_not_exists(#pk)"
    assert put["Put"]["Item"]["sk"] == {"S": "rec#done#a"}
    assert update["Update"]["UpdateExpression"] == "ADD #count :one, #version :one"
    assert recorder.calls[1][1]["ConsistentRead"]

    recorder.calls.clear()
    assert store.complete_task("t", "done", "done#a", {"out": 2}) == (False, 1)
    assert [name for name, _ in recorder.calls] == ["TransactWriteItems", "GetItem"]
    counter = store.get_record("t", "done")
    assert counter is not None and (counter.value, counter.version) == ({"count": 1}, 1)


def test_a_crash_after_the_transaction_landed_counts_once(
    setup: tuple[Backend, Resources, Recorder, Any],
) -> None:
    """Given the transaction of a completion landed but its answer was lost (the worker died),
    when the task completes again, then it is (False, 1): counted once, value of the first."""
    backend, _, _, aws = setup
    Fault("after-call.dynamodb.TransactWriteItems").install(aws.dynamodb)
    with pytest.raises(InvocationCrashed):
        backend.checkpoints.complete_task("t", "done", "done#a", {"out": 1})

    assert backend.checkpoints.complete_task("t", "done", "done#a", {"out": 2}) == (False, 1)
    assert backend.checkpoints.get_record("t", "done#a").value == {"out": 1}  # type: ignore[union-attr]


def _conflict() -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
            "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
        },
        "TransactWriteItems",
    )


def test_a_conflict_on_the_counter_is_retried_then_transient(
    setup: tuple[Backend, Resources, Recorder, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given another completion holds the counter (the transaction is cancelled with
    TransactionConflict), then complete_task tries again; if the conflict persists it raises a
    TransientError (the message is retried later), having changed nothing."""
    backend, _, recorder, aws = setup
    monkeypatch.setattr(dynamodb_records, "_backoff", lambda _round: None)
    store = backend.checkpoints
    Fault("before-call.dynamodb.TransactWriteItems", error=_conflict).install(aws.dynamodb)

    assert store.complete_task("t", "done", "done#a", {}) == (True, 1)
    assert [name for name, _ in recorder.calls] == ["TransactWriteItems"] * 2 + ["GetItem"]

    def always_conflict(**_: Any) -> None:
        raise _conflict()

    aws.dynamodb.meta.events.register("before-call.dynamodb.TransactWriteItems", always_conflict)
    with pytest.raises(TransientError):
        store.complete_task("t", "done", "done#b", {})
    assert store.get_record("t", "done#b") is None
    assert store.get_record("t", "done").value == {"count": 1}  # type: ignore[union-attr]
