"""`aws://NAME` resolves a deployed store from a stack name or a table name (moto), and says
what is missing when it cannot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from durable_graph.store_uri import InvalidStoreURI, open_store
from tests.audit.conftest import THREAD, Store, opened, run_chat
from tests.aws.resources import REGION
from tests.aws.resources import clients as aws_clients


@pytest.fixture
def deployed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    with opened("aws", tmp_path, monkeypatch) as store:
        run_chat(store.app())
        yield store


def _as(store: Store, uri: str) -> Store:
    return Store(store.kind, uri, store.backend, store.app_module, store.resources)


def test_a_table_outside_any_stack_reads_with_its_bucket(deployed: Store) -> None:
    """Given only the table and bucket names, reads work; writing is refused, naming what to
    give, before anything is stored."""
    assert deployed.resources is not None
    settings = deployed.resources.settings
    by_table = _as(deployed, f"aws://{settings.table_name}?bucket={settings.bucket}")
    assert by_table.json("verify", THREAD)["ok"] is True
    assert by_table.json("status", THREAD)["step"] == 8
    refused = by_table.run("fork", THREAD, "--step", "2", "--new-thread", "nope")
    assert refused.code == 2 and "opened without its transition queue" in refused.err
    assert deployed.backend.checkpoints.head_checkpoint("nope") is None
    missing = _as(deployed, f"aws://{settings.table_name}").run("status", THREAD)
    assert missing.code == 2 and "add ?bucket=PAYLOAD-BUCKET" in missing.err


def test_a_stack_table_leads_to_its_stack(deployed: Store) -> None:
    """A table created by CloudFormation carries the stack's name as a tag: the table name alone
    finds the bucket, queue and key from the stack's outputs."""
    assert deployed.resources is not None
    table = deployed.resources.settings.table_name
    stack = deployed.uri.removeprefix("aws://")
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    arn = dynamodb.describe_table(TableName=table)["Table"]["TableArn"]
    dynamodb.tag_resource(
        ResourceArn=arn, Tags=[{"Key": "aws:cloudformation:stack-name", "Value": stack}]
    )
    backend = open_store(f"aws://{table}")
    assert backend.queue.depth() == 0 and backend.signer is not None
    by_table = _as(deployed, f"aws://{table}")
    assert by_table.json("ledger-key")["key_id"] == deployed.json("ledger-key")["key_id"]
    assert by_table.json("verify", THREAD)["signed_steps"] == [6, 8]


def test_names_that_resolve_to_nothing_exit_2(deployed: Store) -> None:
    done = _as(deployed, "aws://no-such-thing").run("status", THREAD)
    assert done.code == 2
    assert "no CloudFormation stack and no DynamoDB table is named 'no-such-thing'" in done.err
    with pytest.raises(InvalidStoreURI, match="expected aws://STACK-OR-TABLE"):
        open_store("aws://stack/extra/path")
    aws_clients()  # the moto account is still usable after the refusals
