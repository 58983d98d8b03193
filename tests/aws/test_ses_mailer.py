"""The seed flow sends its email through SES on AWS (moto), once, whatever is redelivered.

The worker handler runs on real queue messages; faults are injected around real AWS calls
(`tests/aws/faults.py`). The email graph's `send_email` sends inside `ctx.step`, so the SES
message id is recorded before the step commits and replayed on every later run of the task.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from durable_graph.backends.aws.errors import AwsRequestFailed
from durable_graph.backends.aws.ses_mailer import SesMailer
from durable_graph.mail import EmailMessage
from tests.aws.conftest import AwsWorld
from tests.aws.faults import WRITE, Fault, checkpoint_put
from tests.aws.resources import MAIL_FROM

EMAIL = "examples.email_approval:graph"


def _effect_done(params: dict[str, Any]) -> bool:
    item = params.get("Item", {})
    return str(item.get("sk", {}).get("S", "")).startswith("rec#fx#") and '"done"' in str(
        item.get("body", {}).get("S", "")
    )


def throttled() -> BaseException:
    return ClientError(
        {"Error": {"Code": "Throttling", "Message": "Maximum sending rate exceeded."}},
        "SendEmail",
    )


def approve_and_drain(world: AwsWorld, thread_id: str, fault: Fault | None = None) -> None:
    """Start the email graph, drain to the suspension, approve, (arm `fault`), drain."""
    rt = world.rt
    rt.graph.start({"user_prompt": "pay the supplier"}, thread_id=thread_id)
    world.drain()
    rt.graph.resume(thread_id, values={"approved": True}, as_node="human_review", run=False)
    if fault is not None:
        client = rt.clients.ses if "ses." in fault.event else rt.clients.dynamodb
        fault.install(client)
    world.drain()


def test_the_approved_email_goes_out_through_ses_once(aws_factory: Callable[..., AwsWorld]) -> None:
    """Given the email graph on moto, when a thread is approved and the queue drained, then
    SES accepted one message from the configured identity to the recipient with the draft,
    and the state records SES's message id."""
    world = aws_factory(graph=EMAIL)
    approve_and_drain(world, "tx-1")

    head = world.head("tx-1")
    assert (head.status, head.values["outcome"]) == ("completed", "sent")
    [email] = world.sent_emails()
    assert (email.source, email.to) == (MAIL_FROM, ["cfo@example.com"])
    assert email.subject == head.values["subject"] and email.body == head.values["draft"]
    assert head.values["sent_message_id"] and head.values["sent_message_id"] != "tx-1"


FAULTS: dict[str, Callable[[], Fault]] = {
    "crash after the send was recorded": lambda: Fault("after-call.dynamodb.PutItem", _effect_done),
    "crash after the step's checkpoint write": lambda: Fault(f"after-call.{WRITE}", checkpoint_put),
    "crash before the step's checkpoint write": lambda: Fault(
        f"before-call.{WRITE}", checkpoint_put
    ),
    "SES throttles the first send": lambda: Fault("before-call.ses.SendEmail", error=throttled),
}


@pytest.mark.parametrize("case", sorted(FAULTS))
def test_a_redelivered_send_email_does_not_send_again(
    case: str, aws_factory: Callable[..., AwsWorld]
) -> None:
    """Given the approved thread and a fault while `send_email` runs, when the message is
    redelivered and the queue drained, then the thread completed and SES holds one message."""
    world = aws_factory(graph=EMAIL)
    fault = FAULTS[case]()
    approve_and_drain(world, "tx-1", fault)

    assert fault.fired
    head = world.head("tx-1")
    assert (head.status, head.values["outcome"]) == ("completed", "sent")
    assert len(world.sent_emails()) == 1
    assert [c.step for c in world.chain("tx-1")] == [0, 1, 2, 3]


def test_a_duplicate_message_after_the_commit_sends_nothing(
    aws_factory: Callable[..., AwsWorld],
) -> None:
    """Given the send_email transition, when SQS delivers it again after the step committed
    (the FIFO deduplication window has passed), then nothing is sent or committed again."""
    world = aws_factory(graph=EMAIL)
    rt = world.rt
    rt.graph.start({"user_prompt": "pay"}, thread_id="tx-2")
    world.drain()
    rt.graph.resume("tx-2", values={"approved": True}, as_node="human_review", run=False)
    [delivery] = rt.backend.queue.receive(max_messages=1, visibility_timeout=30)
    engine = rt.engine()
    first = engine.execute(delivery.message, receive_count=1)
    second = engine.execute(delivery.message, receive_count=2)
    assert (first.kind, second.kind) == ("committed", "duplicate")
    assert len(world.sent_emails()) == 1


def test_an_unverified_sender_is_refused_with_the_reason(aws: AwsWorld) -> None:
    """Given an address SES has not verified, when the mailer sends, then the error names
    SES's reason and the sender, and nothing was sent."""
    assert aws.clients.ses is not None
    mailer = SesMailer(aws.clients.ses, "intruder@example.org")
    message = EmailMessage(to=("cfo@example.com",), subject="s", body="b")
    with pytest.raises(AwsRequestFailed, match=re.escape("intruder@example.org")) as caught:
        mailer.send(message, idempotency_key="k")
    assert caught.value.aws_code == "MessageRejected"
    assert aws.sent_emails() == []


def test_without_a_mail_identity_the_thread_fails_saying_why(
    aws_factory: Callable[..., AwsWorld],
) -> None:
    """Given a deployment without `mail_from`, when the approved thread reaches send_email,
    then it fails with `mailer_missing` and a message naming the setting; nothing is sent."""
    world = aws_factory(graph=EMAIL, mail_from=None)
    approve_and_drain(world, "tx-3")
    head = world.head("tx-3")
    assert head.status == "failed" and head.error is not None
    assert "mail_from" in head.error.message
    assert world.sent_emails() == []
