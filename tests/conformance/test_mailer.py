"""The mail port (`durable_graph.mail.Mailer`) on every backend: what is sent arrives as sent,
and a malformed key is refused before anything is sent."""

from __future__ import annotations

import pytest

from durable_graph.backend import Backend
from durable_graph.mail import EmailMessage
from tests.conformance.mailboxes import delivered


def test_a_message_arrives_as_sent(backend: Backend) -> None:
    """Given the backend's mailer, when a message is sent, then it returns a message id and
    the mail service holds the message with its recipients, subject and body."""
    assert backend.mailer is not None
    message = EmailMessage(
        to=("cfo@example.com", "audit@example.com"), subject="Wire — approval", body="Ünïcode ok"
    )
    message_id = backend.mailer.send(message, idempotency_key="k-1")
    assert message_id
    assert delivered(backend) == [message]


@pytest.mark.parametrize("key", ["", "a/b", "has space", "x" * 129])
def test_a_bad_idempotency_key_sends_nothing(backend: Backend, key: str) -> None:
    assert backend.mailer is not None
    message = EmailMessage(to=("cfo@example.com",), subject="s", body="b")
    with pytest.raises(ValueError, match="idempotency key"):
        backend.mailer.send(message, idempotency_key=key)
    assert delivered(backend) == []
