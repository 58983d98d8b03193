"""`python -m tests.aws.readonly_handlers`: every Lambda handler, run as on Lambda, in a process
whose file system is read-only outside /tmp (see `tests/aws/test_readonly_task_root.py`).

Reads the functions' environment and `AWS_ENDPOINT_URL` (a moto server in another process), the
webhook secret from `DG_TEST_WEBHOOK_SECRET` and the notifications reader queue from
`DG_TEST_NOTIFICATIONS_URL`. Runs the seed exercise through the handlers: the `api` function
starts a thread from a signed webhook, the `worker` drains the queue, the approval link from the
SNS notification is opened and approved through `api`, the `worker` sends the email (SES); then
the `s3_trigger` function starts a run from an upload, the `dlq` function settles a dead letter
and the `sweeper` runs. Prints one JSON line of what each step answered; the writes it tried
to make outside /tmp would have failed it with `[Errno 30] Read-only file system`.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path
from typing import Any

from durable_graph.backends.aws.factory import runtime
from durable_graph.backends.aws.local_poller import EventSourcePoller, LocalLambdaContext
from durable_graph.backends.aws.s3_start import StartsFailed
from functions.dlq.handler import handler as dlq_handler
from functions.s3_trigger.handler import handler as s3_handler
from functions.sweeper.handler import handler as sweeper_handler
from functions.worker.handler import handler as worker_handler
from tests.api.test_handler import STAGE_URL, Api
from tests.aws.resources import MAIL_FROM

EVENTS = Path(__file__).with_name("events")


def cwd_is_read_only() -> bool:
    """The check that makes this run meaningful: the task root refuses a write."""
    try:
        (Path.cwd() / ".probe").write_text("x")
    except OSError as exc:
        return exc.errno in (errno.EROFS, errno.EACCES)
    return False


def main() -> int:
    rt = runtime()
    sqs, settings = rt.clients.sqs, rt.settings
    api = Api(os.environ["DG_TEST_WEBHOOK_SECRET"])
    report: dict[str, Any] = {"cwd": str(Path.cwd()), "cwd_read_only": cwd_is_read_only()}

    status, started = api.start({"user_prompt": "pay the supplier"}, "msg_ro_1")
    report["api_start"] = status
    thread_id = started["thread"]["thread_id"]
    EventSourcePoller(sqs, settings.queue_url, worker_handler).drain()
    raw = sqs.receive_message(QueueUrl=os.environ["DG_TEST_NOTIFICATIONS_URL"])["Messages"][0]
    path = json.loads(raw["Body"])["links"]["approval"].removeprefix(STAGE_URL)
    report["api_page"] = api.call("GET", path, headers={"Accept": "text/html"})[0]
    decision = json.dumps({"decision": "approve", "comment": "read-only"}).encode()
    report["api_approve"] = api.call(
        "POST", path, body=decision, headers={"Content-Type": "application/json"}
    )[0]
    EventSourcePoller(sqs, settings.queue_url, worker_handler).drain()
    head = rt.backend.checkpoints.head_checkpoint(thread_id)
    assert head is not None
    report["thread"] = {"status": head.status, "outcome": head.values.get("outcome")}
    assert rt.clients.ses is not None
    report["ses_sent"] = rt.clients.ses.get_send_quota()["SentLast24Hours"]
    report["mail_from"] = MAIL_FROM

    uploads = os.environ["DG_TEST_UPLOADS_BUCKET"]
    put = rt.clients.s3.put_object(Bucket=uploads, Key="in/report.txt", Body=b"quarterly")
    event = json.loads((EVENTS / "s3_object_created.json").read_text())
    s3 = event["Records"][0]["s3"]
    s3["bucket"].update(name=uploads, arn=f"arn:aws:s3:::{uploads}")
    etag, version = put["ETag"].strip('"'), put["VersionId"]
    s3["object"].update(key="in/report.txt", eTag=etag, versionId=version)
    try:  # the seed graph has no `upload` field: the start is refused after reading the object
        s3_handler(event, LocalLambdaContext(function_name="s3-trigger"))
    except StartsFailed as refused:
        report["s3_trigger"] = [(r.kind, r.reason) for r in refused.results]

    assert settings.dlq_url
    sqs.send_message(
        QueueUrl=settings.dlq_url,
        MessageBody="{not json",
        MessageGroupId=thread_id,
        MessageDeduplicationId="garbled-1",
    )
    settled = EventSourcePoller(sqs, settings.dlq_url, dlq_handler).drain()
    report["dlq"] = {"records": settled.records, "failed": settled.failed_records}

    swept = sweeper_handler({"source": "aws.events"}, LocalLambdaContext(function_name="sweeper"))
    report["sweeper"] = sorted(swept)
    print(json.dumps(report, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
