"""Read back what a backend's mailer sent, whichever mailer it is (the test's view of each
mail service: the memory dict, the outbox folder, moto's SES account)."""

from __future__ import annotations

from durable_graph.backend import Backend
from durable_graph.backends.aws.ses_mailer import SesMailer
from durable_graph.backends.local.outbox_mailer import OutboxMailer
from durable_graph.mail import EmailMessage, MemoryMailer
from tests.aws.resources import sent_emails


def delivered(backend: Backend) -> list[EmailMessage]:
    """Every message the backend's mailer delivered, in the form it was sent."""
    mailer = backend.mailer
    if isinstance(mailer, MemoryMailer):
        return list(mailer.sent.values())
    if isinstance(mailer, OutboxMailer):
        return list(mailer.read_all(backend.checkpoints.keys).values())
    if isinstance(mailer, SesMailer):
        return [EmailMessage(to=tuple(m.to), subject=m.subject, body=m.body) for m in sent_emails()]
    raise AssertionError(f"no reader for the mailer {mailer!r}: add one here")
