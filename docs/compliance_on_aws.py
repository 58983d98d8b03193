"""Write `docs/compliance-on-aws.md`: the audit walkthrough on the AWS shape, with real output.

Everything runs on moto: the stack's table, buckets, queues, topic and KMS key are created
through the real APIs (`tests/aws/resources.py`, from the CDK table definition), a
CloudFormation stack publishes their names as outputs the way `cdk deploy` does, the CLI reaches
them only through `--store aws://STACK`, and the seed's steps run in the `worker` Lambda handler
fed by SQS (the local event-source poller). Re-run it after changing the CLI or the record
format, so the page stays true:

    PYTHONPATH=shared:. python docs/compliance_on_aws.py
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from moto import mock_aws

from docs.aws_walkthrough import Walkthrough, api_environment, payload_versions
from docs.compliance_on_aws_text import (
    AFTER_RUN,
    DIFF,
    ERASE,
    ERASE_GONE,
    ERASE_LIMITS,
    ERASE_OBJECTS,
    ERASE_PROOF,
    ERASE_REQUEST,
    ERASE_SCHEDULED,
    ERASE_SWEEP,
    FORK,
    GC,
    GC_AFTER,
    GC_CLI,
    HISTORY,
    INTRO,
    KEY,
    OFFLINE,
    OUTRO,
    RUN,
    SHOW,
    TAMPER,
    VERIFY,
)
from durable_graph.backends.aws import factory, lambda_worker, names
from durable_graph.backends.aws.s3_payloads import S3PayloadStore
from durable_graph.canonical import canonical_bytes
from durable_graph.payload_deletes import GRACE
from durable_graph.payloads import CHUNK_CONTENT_TYPE
from tests.audit.conftest import publish_stack
from tests.aws.resources import REGION, Resources, clients, create_resources

PAGE = Path(__file__).with_name("compliance-on-aws.md")
GRAPH = "examples.email_approval:graph"
THREAD = "tx-1001"
ERASED = "tx-1002"
PROMPT = (
    "pay Jane Roe (IBAN DE44 5001 0517 5407 3249 31) for the March invoice of the clinic's "
    "cleaning contract, as agreed with procurement on the phone"
)
DPO_ARN = "arn:aws:iam::123456789012:role/data-protection-officer"


def tamper(resources: Resources, step: int, old: str, new: str) -> None:
    """Edit one stored checkpoint item in DynamoDB, as someone with table write access can."""
    dynamodb = clients().dynamodb
    key = {
        names.PARTITION_KEY: {"S": f"thread#{THREAD}"},
        names.SORT_KEY: {"S": f"{names.CHECKPOINT_PREFIX}{step:012d}"},
    }
    table = resources.settings.table_name
    item = dynamodb.get_item(TableName=table, Key=key)["Item"]
    body = item[names.BODY_ATTRIBUTE]["S"]
    assert old in body, (old, body)
    item[names.BODY_ATTRIBUTE] = {"S": body.replace(old, new)}
    dynamodb.put_item(TableName=table, Item=item)


def erasure_request(w: Walkthrough, workdir: Path) -> None:
    """Section 8: a person's data erased through the API's IAM route, then proven."""
    w.say(ERASE)
    w.cli("run", GRAPH, "--thread", ERASED, "--input", json.dumps({"user_prompt": PROMPT}))
    w.lambda_workers()
    w.cli("resume", ERASED, "--values", json.dumps({"approved": True}), "--as-node",
          "human_review", "--actor", "alice@example.com")  # fmt: skip
    w.lambda_workers()
    before = payload_versions(w.resources)
    w.say(ERASE_OBJECTS)
    listing = (
        "aws s3api list-object-versions --bucket $PAYLOAD_BUCKET "
        "--query 'Versions[].[Key,VersionId]' --output text"
    )
    w.shell(listing, "\n".join(before))
    w.say(ERASE_REQUEST)
    request = {
        "fields": ["user_prompt", "subject", "draft"],
        "reason": "GDPR Art. 17 request 2026-118 (Jane Roe)",
    }
    w.api("POST", f"/threads/{ERASED}/erase", request, DPO_ARN)
    w.say(ERASE_PROOF)
    w.cli("verify", ERASED)
    w.cli("show", ERASED, "--step", "1")
    w.say(ERASE_SCHEDULED)
    after = payload_versions(w.resources)
    assert 0 < len(after) < len(before), (before, after)
    w.shell(listing, "\n".join(after))
    time.sleep(GRACE.total_seconds() + 1)  # the sweeper's next run comes later than this
    w.say(ERASE_SWEEP)
    w.sweeper()
    gone = payload_versions(w.resources)
    assert not gone, gone
    w.shell(listing, "None")
    w.say(ERASE_GONE)
    bundle = workdir / f"{ERASED}.audit.json"
    w.cli("export", ERASED, "--out", str(bundle))
    found = sum(bundle.read_text().count(s) for s in ("DE44", "Jane Roe (IBAN"))
    assert found == 0
    w.shell(f"grep -c -e 'DE44' -e 'Jane Roe (IBAN' {bundle.name}", f"{found}\n(exit 1)")
    w.say(ERASE_LIMITS)


def payload_collector(w: Walkthrough) -> None:
    """Section 8, end: what a killed worker stored and nobody wrote down, collected."""
    w.say(GC)
    stray = {"s": "3f9a1c0e5b7d2468ace13579bdf02468", "v": "draft of a step never committed " * 300}
    S3PayloadStore(clients().s3, w.resources.settings.bucket).put(
        canonical_bytes(stray), CHUNK_CONTENT_TYPE
    )
    # The sweeper function's environment, as the stack sets it with its payload delete grant.
    os.environ[names.GRANT_ENV_PAYLOAD_DELETES] = "true"
    factory.reset()
    daily = w.sweeper("gc")
    assert daily["deleted"] == 0 and daily["recent"] == 1, daily
    w.say(GC_CLI)
    time.sleep(1.1)
    w.cli("gc", "--grace", "1s")
    w.say(GC_AFTER)


def walkthrough(workdir: Path) -> str:
    resources = create_resources(clients(), graph=GRAPH, offload_bytes=256)
    # Versioned, as the stack makes it: an erasure must delete every version of an object.
    clients().s3.put_bucket_versioning(
        Bucket=resources.settings.bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    os.environ.update(resources.env())
    api_environment(resources)
    lambda_worker.worker.cache_clear()
    factory.reset()
    stack = publish_stack(resources)
    os.environ["DURABLE_GRAPH_STORE"] = f"aws://{stack}"
    w = Walkthrough(stack, resources, workdir)
    w.say(INTRO.format(stack=stack))
    w.say(RUN)
    w.cli(
        "run", GRAPH, "--thread", THREAD, "--input", json.dumps({"user_prompt": "pay the supplier"})
    )
    w.lambda_workers()
    w.say(AFTER_RUN)
    w.cli("status", THREAD)
    w.cli(
        "resume",
        THREAD,
        "--values",
        json.dumps({"approved": True, "reviewer_comment": "checked with procurement"}),
        "--as-node",
        "human_review",
        "--actor",
        "alice@example.com",
    )
    w.lambda_workers()
    w.say(HISTORY)
    w.cli("history", THREAD)
    w.say(SHOW)
    w.cli("show", THREAD, "--step", "1")
    w.say(DIFF)
    w.cli("diff", THREAD, "1", "3")
    w.say(VERIFY)
    w.cli("verify", THREAD)
    w.say(KEY)
    w.cli("ledger-key", "--out", str(workdir / "ledger.pub.pem"))
    w.cli("export", THREAD, "--out", str(workdir / f"{THREAD}.audit.json"))
    w.say(OFFLINE)
    w.cli(
        "verify",
        "--bundle",
        str(workdir / f"{THREAD}.audit.json"),
        "--trusted-key",
        str(workdir / "ledger.pub.pem"),
        env={"DURABLE_GRAPH_STORE": "sqlite:///nowhere"},
    )
    w.say(FORK)
    w.cli(
        "fork",
        THREAD,
        "--step",
        "1",
        "--new-thread",
        f"{THREAD}-whatif",
        "--values",
        json.dumps({"recipient": "treasury@example.com"}),
        "--actor",
        "bob@example.com",
    )
    w.cli("replay", THREAD, "--step", "1")
    erasure_request(w, workdir)
    payload_collector(w)
    w.say(TAMPER)
    tamper(resources, 2, "alice@example.com", "mallory@example.com")
    w.cli("verify", THREAD, expect=1)
    w.cli("verify", "--all", expect=1)
    w.say(OUTRO)
    return w.page()


def render() -> str:
    saved = dict(os.environ)
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        POWERTOOLS_LOG_LEVEL="WARNING",
        POWERTOOLS_METRICS_NAMESPACE="DurableGraphDocs",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    logging.getLogger("durable_graph").setLevel(logging.WARNING)
    try:
        with tempfile.TemporaryDirectory() as folder, mock_aws():
            return walkthrough(Path(folder))
    finally:
        lambda_worker.worker.cache_clear()
        factory.reset()
        os.environ.clear()
        os.environ.update(saved)


if __name__ == "__main__":
    PAGE.write_text(render(), encoding="utf-8")
    print(f"wrote {PAGE}", file=sys.stderr)
