"""`POST /threads/{id}/erase` through the `api` Lambda on moto: an IAM-signed operator erases a
person's data from a completed approval thread; the values and their S3 objects (every version,
on a versioned bucket as the stack makes it) are gone, the ledger still verifies and says who
erased what; an unsigned or malformed request changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from durable_graph.backends.aws import names
from durable_graph.backends.aws.factory import build_runtime
from durable_graph.backends.aws.local_poller import LocalLambdaContext
from durable_graph.clock import ManualClock
from durable_graph.payload_deletes import GRACE
from durable_graph.pending_deletes import pending_deletes
from functions.sweeper import handler as sweeper_module
from functions.sweeper.handler import handler as sweeper_handler
from tests.api.test_handler import CALLER, Api, api
from tests.aws.conftest import AwsWorld, aws_factory

__all__ = ["api", "aws_factory"]  # fixtures reused; `api` runs over this module's `aws`

PROMPT = "pay Jane Roe (IBAN DE44 5001 0517 5407 3249 31) for the March invoice, " + "x" * 300
JSON_HEADERS = {"Content-Type": "application/json"}


@pytest.fixture
def aws(aws_factory: Callable[..., AwsWorld]) -> AwsWorld:
    """Values over 256 bytes go to S3, so the prompt and the draft are payload objects."""
    world = aws_factory(offload_bytes=256)
    world.clients.s3.put_bucket_versioning(
        Bucket=world.resources.settings.bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    return world


def objects(world: AwsWorld) -> dict[str, bytes]:
    """Every version in the payload bucket: key@version -> bytes."""
    s3, bucket = world.clients.s3, world.resources.settings.bucket
    listing = s3.list_object_versions(Bucket=bucket)
    return {
        f"{v['Key']}@{v['VersionId']}": s3.get_object(
            Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"]
        )["Body"].read()
        for v in listing.get("Versions", [])
    }


def table_items(world: AwsWorld) -> list[dict[str, Any]]:
    items = world.clients.dynamodb.scan(TableName=world.resources.settings.table_name)["Items"]
    return sorted(items, key=lambda i: json.dumps(i, sort_keys=True, default=repr))


def completed_thread(aws: AwsWorld, api: Api) -> str:
    status, started = api.start({"user_prompt": PROMPT}, "msg_erase_1")
    assert status == 201, started
    thread_id: str = started["thread"]["thread_id"]
    aws.drain()
    (note,) = [n for n in aws.notifications() if n["thread_id"] == thread_id]
    path = note["links"]["approval"].split("/v1", 1)[1]
    decision = json.dumps({"decision": "approve", "comment": "ok"}).encode()
    status, _, body = api.call("POST", path, body=decision, headers=JSON_HEADERS)
    assert status == 200, body
    aws.drain()
    assert aws.head(thread_id).status == "completed"
    return thread_id


def test_an_operator_erases_a_persons_data_through_the_lambda(
    aws: AwsWorld, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a completed approval thread whose prompt and draft (naming Jane Roe and her IBAN)
    are S3 objects
    When an unsigned request, then a signed one naming an unknown field, then a signed one
    naming the three fields ask to erase them
    Then 401 and 400 change no item and no object; the signed request erases at once, the
    shared object stored moments ago scheduled, and after the sweeper's next run no S3 version
    holds the IBAN any more, verify passes and lists the fields, the thread view shows who
    erased them, and the export holds none of the erased bytes."""
    thread_id = completed_thread(aws, api)
    before_items, before_objects = table_items(aws), objects(aws)
    assert any(b"DE44" in data for data in before_objects.values())
    erase_path = f"/threads/{thread_id}/erase"
    request = {"fields": ["user_prompt", "subject", "draft"], "reason": "GDPR Art. 17 #2026-118"}

    status, _, body = api.call(
        "POST", erase_path, body=json.dumps(request).encode(), headers=JSON_HEADERS
    )
    assert status == 401 and json.loads(body)["error"]["code"] == "unauthorized"
    bad = {**request, "fields": ["user_prompt", "iban"]}
    status, _, body = api.call(
        "POST", erase_path, body=json.dumps(bad).encode(), headers=JSON_HEADERS, caller=CALLER
    )
    assert status == 400 and "iban" in json.loads(body)["error"]["message"]
    assert (table_items(aws), objects(aws)) == (before_items, before_objects)

    status, _, body = api.call(
        "POST", erase_path, body=json.dumps(request).encode(), headers=JSON_HEADERS, caller=CALLER
    )

    assert status == 200, body
    record = json.loads(body)["record"]
    assert record["actor"] == {"kind": "api", "id": CALLER}
    assert record["reason"] == "GDPR Art. 17 #2026-118" and record["signature"]
    # The recorded LLM answer (a shared, content-addressed object) was stored moments ago: the
    # erasure does not wait out its grace period, the sweeper's next run deletes it.
    scheduled = json.loads(body)["scheduled"]
    assert scheduled and set(scheduled) <= set(record["payloads"])
    held = {key for key, data in objects(aws).items() if b"DE44" in data}
    assert held and all(key.split("/")[-1].split("@")[0] in scheduled for key in held)
    next_run = ManualClock(datetime.now(UTC) + GRACE + timedelta(seconds=1))
    rt = build_runtime(aws.resources.settings, aws.clients, clock=next_run)
    monkeypatch.setattr(sweeper_module, "runtime", lambda: rt)
    event = {names.SWEEPER_JOB_KEY: names.RETENTION_JOB, "source": "aws.events"}
    assert sorted(sweeper_handler(event, LocalLambdaContext())["scheduled_deleted"]) == sorted(
        scheduled
    )
    assert pending_deletes(rt.backend.checkpoints) == []
    after = objects(aws)
    assert not any(b"DE44" in data for data in after.values())
    assert set(after) < set(before_objects)
    status, _, body = api.call("GET", f"/threads/{thread_id}/verify", caller=CALLER)
    report = json.loads(body)
    assert status == 200 and report["ok"] is True, report
    assert report["erased"]["0"] == ["draft", "subject", "user_prompt"]
    status, _, body = api.call("GET", f"/threads/{thread_id}", caller=CALLER)
    values = json.loads(body)["values"]
    assert values["user_prompt"]["$erased"]["by"] == f"api:{CALLER}"
    assert values["outcome"] == "sent"
    status, _, body = api.call("GET", f"/threads/{thread_id}/export", caller=CALLER)
    assert status == 200 and "DE44" not in body and "Jane Roe (IBAN" not in body
