"""Tampering with the production shape's items is caught: `verify --store aws://STACK` names the
step, as on SQLite (tests/e2e/test_tamper_detection.py).

Given the chat thread in DynamoDB + S3 (moto) and someone with write access to the table and
the bucket but not to the KMS key, each edit below makes `verify` exit 1 naming the first bad
step and the check that caught it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from durable_graph.backends.aws import names
from durable_graph.backends.aws.kms_signer import KmsSigner
from durable_graph.canonical import compact_json
from durable_graph.checkpoint import Actor, Checkpoint, ParentRef
from durable_graph.signing import SIG_PREFIX, make_signature
from tests.audit.conftest import THREAD, Store, opened, run_chat
from tests.aws.resources import clients, stored_row


@pytest.fixture
def aws_chat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    with opened("aws", tmp_path, monkeypatch) as store:
        run_chat(store.app())
        assert store.json("verify", THREAD)["ok"] is True
        yield store


def _key(step: int | None = None, record: str | None = None) -> dict[str, dict[str, str]]:
    sort = (
        f"{names.CHECKPOINT_PREFIX}{step:012d}" if record is None else names.RECORD_PREFIX + record
    )
    return {names.PARTITION_KEY: {"S": f"thread#{THREAD}"}, names.SORT_KEY: {"S": sort}}


def _table(store: Store) -> str:
    assert store.resources is not None
    return store.resources.settings.table_name


def _body(store: Store, step: int) -> str:
    item = clients().dynamodb.get_item(TableName=_table(store), Key=_key(step))["Item"]
    return stored_row(item)


def _put_body(store: Store, step: int, body: str) -> None:
    dynamodb = clients().dynamodb
    item = dynamodb.get_item(TableName=_table(store), Key=_key(step))["Item"]
    item[names.BODY_ATTRIBUTE] = {"S": body}
    dynamodb.put_item(TableName=_table(store), Item=item)


def test_a_modified_item_is_caught_at_its_step(aws_chat: Store) -> None:
    """The approver of step 7 rewritten in the stored item: its hash no longer matches."""
    body = _body(aws_chat, 7)
    assert "alice@example.com" in body
    _put_body(aws_chat, 7, body.replace("alice@example.com", "mallory@example.com"))
    report = aws_chat.json("verify", THREAD, expect=1)
    assert report["first_bad_step"] == 7 and report["check"] == "hash"
    text = aws_chat.run("verify", THREAD)
    assert text.code == 1 and text.out.startswith(f"FAILED: {THREAD}: step 7: hash")


def test_a_deleted_item_is_caught(aws_chat: Store) -> None:
    clients().dynamodb.delete_item(TableName=_table(aws_chat), Key=_key(4))
    report = aws_chat.json("verify", THREAD, expect=1)
    assert report["first_bad_step"] == 4


def test_a_swapped_s3_object_is_caught(aws_chat: Store) -> None:
    """The offloaded 10 KB attachment of step 0 (a salted chunk) edited in the bucket, same
    key, same shape."""
    assert aws_chat.resources is not None
    bucket = aws_chat.resources.settings.bucket
    s3 = clients().s3
    objects = {
        o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        for o in s3.list_objects_v2(Bucket=bucket)["Contents"]
    }
    [(key, data)] = [(k, v) for k, v in objects.items() if b"A" * 10_000 in v]
    s3.put_object(Bucket=bucket, Key=key, Body=data.replace(b"A" * 10_000, b"B" * 10_000))
    report = aws_chat.json("verify", THREAD, expect=1)
    assert report["first_bad_step"] == 0 and report["check"] == "payload"


def test_a_rewritten_chain_resigned_with_another_key_is_caught(aws_chat: Store) -> None:
    """The approver of step 7 forged, steps 7 and 8 re-hashed and re-linked, and the head
    re-signed with the attacker's own KMS key: every hash and link holds, but the signature is
    not by the stack's ledger key."""
    forged7 = Checkpoint.from_stored_json(_body(aws_chat, 7)).model_copy(
        update={"actor": Actor(kind="human", id="mallory@example.com")}
    )
    forged7 = forged7.with_io_restored().sealed()
    _put_body(aws_chat, 7, forged7.to_stored_json())
    forged8 = Checkpoint.from_stored_json(_body(aws_chat, 8)).model_copy(
        update={
            "prev_hash": forged7.hash,
            "parent": ParentRef(thread_id=THREAD, step=7, hash=forged7.hash),
        }
    )
    forged8 = forged8.with_io_restored().sealed()
    _put_body(aws_chat, 8, forged8.to_stored_json())
    kms = clients().kms
    other_key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    signature = make_signature(KmsSigner(kms, other_key["KeyId"]), forged8, forged8.created_at)
    clients().dynamodb.put_item(
        TableName=_table(aws_chat),
        Item={
            **_key(record=f"{SIG_PREFIX}8"),
            names.BODY_ATTRIBUTE: {"S": compact_json(signature.model_dump(mode="json"))},
            names.VERSION_ATTRIBUTE: {"N": "1"},
        },
    )
    report = aws_chat.json("verify", THREAD, expect=1)
    assert report["first_bad_step"] == 8 and report["check"] == "signature"
    assert report["first_by_check"] == {"signature": 8}
