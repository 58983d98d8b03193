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

import contextlib
import io
import json
import logging
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from moto import mock_aws

from durable_graph.api.keys import new_webhook_secret
from durable_graph.backends.aws import factory, lambda_worker, names
from durable_graph.backends.aws.local_poller import EventSourcePoller, LocalLambdaContext
from durable_graph.cli import common, main
from durable_graph.payload_deletes import GRACE
from tests.audit.conftest import publish_stack
from tests.aws.resources import REGION, Resources, clients, create_resources, session

PAGE = Path(__file__).with_name("compliance-on-aws.md")
GRAPH = "examples.email_approval:graph"
THREAD = "tx-1001"
ERASED = "tx-1002"
PROMPT = (
    "pay Jane Roe (IBAN DE44 5001 0517 5407 3249 31) for the March invoice of the clinic's "
    "cleaning contract, as agreed with procurement on the phone"
)
API_EVENT = Path(__file__).resolve().parents[1] / "tests/api/events/api_gateway_rest.json"
DPO_ARN = "arn:aws:iam::123456789012:role/data-protection-officer"


class Walkthrough:
    """Runs commands as a reader would type them and keeps what they printed."""

    def __init__(self, stack: str, resources: Resources, workdir: Path) -> None:
        self.stack = stack
        self.resources = resources
        self.workdir = workdir
        self.parts: list[str] = []

    def say(self, text: str) -> None:
        self.parts.append(text.strip("\n") + "\n")

    def cli(self, *args: str, expect: int = 0, env: dict[str, str] | None = None) -> str:
        """`durable-graph ARGS` with `DURABLE_GRAPH_STORE=aws://STACK` (or `env`)."""
        common.backend.cache_clear()
        common.graph.cache_clear()
        out = io.StringIO()
        with (
            _environment(env or {}),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(out),
        ):
            code = main(list(args))
        assert code == expect, (args, code, out.getvalue())
        shown = " ".join(shlex.quote(a) for a in args).replace(str(self.workdir) + "/", "")
        prefix = " ".join(f"{k}={v}" for k, v in (env or {}).items())
        text = out.getvalue().replace(str(self.workdir) + "/", "")
        self.parts.append(
            f"```console\n$ {prefix + ' ' if prefix else ''}durable-graph {shown}\n{text}```\n"
        )
        return text

    def lambda_workers(self) -> None:
        """What the deployed `worker` function does: take the transitions off SQS, run them."""
        from functions.worker.handler import handler, logger

        logger.setLevel(logging.WARNING)
        poller = EventSourcePoller(
            clients().sqs, self.resources.settings.queue_url, handler, batch_size=10
        )
        poller.drain()

    def sweeper(self) -> None:
        """Invoke the deployed `sweeper` function's retention job, as its schedule does."""
        from functions.sweeper.handler import handler

        done = handler({"job": "retention"}, LocalLambdaContext())
        payload = '\'{"job": "retention"}\''
        self.shell(
            "aws lambda invoke --function-name $SWEEPER_FUNCTION --cli-binary-format "
            f"raw-in-base64-out --payload {payload} /dev/stdout",
            json.dumps(done, indent=2),
        )

    def shell(self, command: str, output: str) -> None:
        """A command whose output was computed here (an AWS CLI call, a grep), shown as typed."""
        self.parts.append(f"```console\n$ {command}\n{output.rstrip()}\n```\n")

    def api(self, method: str, path: str, body: Mapping[str, object], caller: str) -> str:
        """Call the deployed `api` function as API Gateway does for a SigV4-signed request
        (IAM authorisation puts the caller's ARN in the request context); show it as awscurl."""
        from functions.api import handler as api_handler

        event = json.loads(API_EVENT.read_text())
        raw = json.dumps(body)
        event.update(httpMethod=method, path=path, resource=path, body=raw)
        event["headers"]["Content-Type"] = "application/json"
        event["requestContext"].update(httpMethod=method, path=f"/v1{path}", resourcePath=path)
        event["requestContext"]["identity"]["userArn"] = caller
        api_handler.resolver.cache_clear()
        result = api_handler.handler(event, LocalLambdaContext(function_name="durable-graph-api"))
        shown = json.dumps(json.loads(result["body"]), indent=2)
        self.shell(
            f'awscurl --service execute-api -X {method} "${{API_URL}}{path.lstrip("/")}" \\\n'
            f"    -d {shlex.quote(raw)}",
            f"HTTP {result['statusCode']}\n{shown}",
        )
        assert result["statusCode"] == 200, result
        return str(result["body"])

    def page(self) -> str:
        return "\n".join(self.parts)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


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


def payload_versions(resources: Resources) -> list[str]:
    """`aws s3api list-object-versions` of the payload bucket, one line per version."""
    s3, bucket = clients().s3, resources.settings.bucket
    listing = s3.list_object_versions(Bucket=bucket, Prefix=names.PAYLOAD_PREFIX)
    return [f"{v['Key']}\t{v['VersionId']}" for v in listing.get("Versions", [])]


def api_environment(resources: Resources) -> None:
    """The `api` function's secrets and settings, as the stack gives them."""
    sm = session().client("secretsmanager")
    signing = sm.create_secret(Name="approval-key", SecretString="k" * 48)["ARN"]
    webhook = sm.create_secret(Name="webhook", SecretString=new_webhook_secret())["ARN"]
    os.environ[names.ENV_SIGNING_KEY_PARAM] = signing
    os.environ[names.ENV_WEBHOOK_SECRET_PARAM] = webhook
    os.environ[names.ENV_PUBLIC_BASE_URL] = "https://abc123.execute-api.us-east-1.amazonaws.com/v1"
    os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"


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
    w.say(TAMPER)
    tamper(resources, 2, "alice@example.com", "mallory@example.com")
    w.cli("verify", THREAD, expect=1)
    w.cli("verify", "--all", expect=1)
    w.say(OUTRO)
    return w.page()


INTRO = """
# Compliance on AWS: time travel and audit on DynamoDB + S3

<!-- Generated by `PYTHONPATH=shared:. python docs/compliance_on_aws.py`; do not edit by hand. -->

This is [time-travel-and-audit.md](time-travel-and-audit.md) on the production shape: the
threads live in DynamoDB and S3, the steps run in the `worker` Lambda, chain heads are signed
with a KMS key. An auditor needs the CLI, read access to the table and the payload bucket, and
`kms:GetPublicKey` on the ledger key; **not** the application's code (`status`, `history`,
`show`, `diff`, `verify` and `export` never import it).

Every command reaches the deployment through one store URI: `--store aws://STACK` (or
`DURABLE_GRAPH_STORE`, set once). `STACK` is the CloudFormation stack's name; the table, bucket,
queue and KMS key come from its outputs (`TableName`, `PayloadBucketName`, `TransitionQueueUrl`,
`LedgerKeyArn`, ...). A table name works too (`aws://TABLE`: a stack's table leads to its stack).

The output below is real: it was produced on moto (the stack's resources created through the AWS
APIs, the Lambda handler fed from SQS) by `docs/compliance_on_aws.py`, with

```console
$ export DURABLE_GRAPH_STORE=aws://{stack}
```
"""

RUN = """
## 1. A run with a human decision

From the CLI, `run` on an `aws://` store commits step 0 and queues the first task: the deployed
`worker` function runs it (the CLI does not compete with it for the queue).
"""

AFTER_RUN = """
The worker drafted the email and the thread suspended for review. The approver decides, and the
worker sends the email:
"""

HISTORY = """
## 2. Who did what, when: `history`

Each step's actor: the CLI that started it, the Lambda worker that ran the node
(`worker:<host:pid:...>`), the human approver.
"""

SHOW = """
## 3. The exact state, the model's output and the routing at a step: `show`

`io` is what the language model answered, recorded before the node used it; `route` is the edge
that chose the next node.
"""

DIFF = """
## 4. What changed between two steps: `diff`
"""

VERIFY = """
## 5. Prove nobody changed anything: `verify`

Every hash, link, payload digest (S3 objects included) and KMS signature is recomputed:
"""

KEY = """
## 6. Take the evidence elsewhere: `ledger-key`, `export`, `verify --bundle`

The ledger's public key comes from KMS (`GetPublicKey`); publish its fingerprint through a
channel the operators of the table do not control. The bundle holds every record, payload and
signature of the thread.
"""

OFFLINE = """
On another machine, with no AWS access at all (`verify --bundle` opens no store):
"""

FORK = """
## 7. What if: `fork`, and re-running a step: `replay`

These two load the application's graph (a fork routes and runs under it; replay re-executes the
node), so they need the application installed. On `aws://` the fork's step 0 is committed and
the deployed workers run it.
"""

ERASE = """
## 8. An erasure request, end to end

Jane Roe, named with her IBAN in a payment request, asks for her data to be erased (GDPR
Art. 17). Here is her thread, run and approved like the first:
"""

ERASE_OBJECTS = """
Values above the deployment's offload size (`-c offload_bytes`, 256 here) are chunks in the
payload bucket, which the stack creates versioned:
"""

ERASE_REQUEST = """
The data protection officer's role calls the API's erase route (`API_URL` is the stack's
`ApiUrl` output). API Gateway lets only SigV4-signed requests through (`AWS_IAM`), and the
function records the signing principal as the erasure's actor; the stack grants the `api`
function `s3:DeleteObject` and `s3:DeleteObjectVersion` on the payload prefix only, and no
function may delete a table item but the sweeper a lost append's leftover (`infra/stack.py`,
tested in `tests/infra/test_stack.py`). The
named fields are erased at every step; the answer is the signed erasure record, written before
anything changed:
"""

ERASE_PROOF = """
The ledger still proves every step (the salted digests of the erased values stay), says what was
erased, where, by whom and why, and shows each erased value as such. The prompt the model was
sent was never stored: the call is named by a salted digest of it (`llm#…`, keyed by the
thread's data key when encryption is on), whose salt went with the erased answer, so no one
can confirm a guessed prompt against what is left (`docs/record-format.md` §5):
"""

ERASE_SCHEDULED = """
The prompt's chunk (salted: this thread's alone) is deleted, every version (a delete marker
alone would leave the bytes readable by version id). The recorded model answer is a shared,
content-addressed object, and it was stored seconds ago: a step of another thread that stored
the same bytes may be about to commit a record naming it, so the erasure does not delete it
yet, nor keep the caller waiting; the answer's `scheduled` names it
(`docs/erasure-and-retention.md`, "What `erase` does"):
"""

ERASE_SWEEP = """
The `sweeper` function's next retention run (daily, on the stack's `RetentionSchedule` rule;
here invoked by hand) re-checks that no thread refers to it and that nobody stored it in the
last 10 seconds, and deletes it, every version:
"""

ERASE_GONE = """
An audit bundle made now verifies offline and holds none of the erased bytes. Without
`"fields"`, every field is erased; `durable-graph erase` does the same from an operator's shell
(`docs/erasure-and-retention.md`). Retention runs the same erasure on a schedule: the
`sweeper` function, invoked daily by the stack's `RetentionSchedule` rule, erases
what each graph's `compile(retention=Retention(days=N))` no longer allows, as
`durable-graph retention run` does; on a store too big for one invocation it stops 30 seconds
before the function's timeout and the next invocation continues from the saved position.
"""

ERASE_LIMITS = """
**What the erasure reaches, and what it cannot.** Besides the values and their S3 objects it
erases the recorded model answers of the steps whose values it erased, the state snapshots,
the objects a node stored with `ctx.save` that an erased value pointed to (unless another
thread's values point to them too), and, with `"parts"`, task arguments, interrupt payloads,
resume values, error messages and io responses (and the `ctx.step` results that repeat them).
It cannot recall what already left the deployment: the SNS notification of the suspension
(which carried the interrupt payload to every subscriber) and the email SES delivered are the
recipients' copies now. The stack keeps neither (SES: the message id, in the `ctx.step` record,
erased with the io): the erasure record, with its time and reason, is what to forward to those
recipients (GDPR Art. 19). Embedded and on PostgreSQL, where the store keeps the notifications
and the mail it sent, erasure scrubs those copies too (the interrupt payload of a notification
when the interrupt part is erased; the subject and body of a mail when any of the thread's
values are, keeping to whom it went). An approval link's record (`approval#`, the approver it
was bound to and the comment given with the decision) is not reached by a field erasure; it is
sealed when encryption at rest is on, and goes with the data key when the whole thread is
erased.

**Who approved stays.** The approvers named in a decision's `signoff` (and the actor of each
step) are the audit trail's "who": they are hashed into the chain and not erasable, and they
are the approvers' data, not the data subject's. Pseudonymising them (an identity provider's
subject id in place of an email address, a lookup table the controller can forget) is a policy
choice of the deployment; durable-graph does not build it.
"""

TAMPER = """
## 9. Someone with write access to the table edits a record

The approver of step 2 is rewritten directly in its DynamoDB item (the `body` attribute, put
back with `PutItem`). `verify` names the step and the check; `verify --all` reads the threads a
page at a time through the table's status index, reports each failure on stderr as it finds it,
and exits 1:
"""

OUTRO = """
What each check means, and the limits worth knowing, are in
[time-travel-and-audit.md](time-travel-and-audit.md). The same tampering cases (an edited item,
a deleted item, a swapped S3 object, a chain re-hashed and re-signed with another KMS key) are
tested on DynamoDB + S3 in `tests/audit/test_tamper_aws.py`.
"""


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
