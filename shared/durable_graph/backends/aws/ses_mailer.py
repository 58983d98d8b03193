"""Mailer on Amazon SES: a node's email leaves from the deployment's verified identity.

One `SendEmail` request per message (the only SES action the stack grants, and only on the
configured identity: `infra.components.mail`). SES has no idempotency token, so exactly-once
comes from `ctx.step`, which records the returned message id and replays it on every later run
of the task; the idempotency key is attached as the message tag `idempotency_key` (visible in
SES event publishing) so a crash between "SES accepted" and "id recorded" can be recognised.

Errors are translated once (`errors.translate`): throttling (`Throttling`) and 5xx answers are
retried; `MessageRejected` (unverified sender or recipient in the sandbox),
`MailFromDomainNotVerified` and `AccessDenied` fail the task with SES's reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from durable_graph.backends.aws.errors import translate
from durable_graph.mail import EmailMessage, check_key

if TYPE_CHECKING:
    from mypy_boto3_ses import SESClient

__all__ = ["IDEMPOTENCY_TAG", "SesMailer"]

IDEMPOTENCY_TAG = "idempotency_key"


class SesMailer:
    """Implements `durable_graph.mail.Mailer` with SES `SendEmail`."""

    def __init__(self, client: SESClient, sender: str) -> None:
        self.client = client
        self.sender = sender

    def send(self, message: EmailMessage, *, idempotency_key: str) -> str:
        check_key(idempotency_key)
        try:
            answer = self.client.send_email(
                Source=self.sender,
                Destination={"ToAddresses": list(message.to)},
                Message={
                    "Subject": {"Data": message.subject, "Charset": "UTF-8"},
                    "Body": {"Text": {"Data": message.body, "Charset": "UTF-8"}},
                },
                Tags=[{"Name": IDEMPOTENCY_TAG, "Value": idempotency_key}],
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"SES SendEmail from {self.sender}") from exc
        return answer["MessageId"]
