"""`durable_graph.mail`: a malformed message is refused naming the field; the memory mailer
keeps one message per idempotency key."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from durable_graph.mail import EmailMessage, MemoryMailer


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"to": ("CFO",), "subject": "s", "body": "b"}, "to"),
        ({"to": (), "subject": "s", "body": "b"}, "to"),
        ({"to": ("a@example.com",), "subject": "", "body": "b"}, "subject"),
        ({"to": ("a@example.com",), "subject": "s", "body": "b", "cc": "x"}, "cc"),
    ],
)
def test_a_malformed_message_is_refused_naming_the_field(
    fields: dict[str, object], where: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        EmailMessage.model_validate(fields)
    assert caught.value.errors()[0]["loc"][0] == where


def test_memory_mailer_keeps_one_message_per_key() -> None:
    mailer = MemoryMailer()
    first = EmailMessage(to=("a@example.com",), subject="one", body="b")
    second = EmailMessage(to=("a@example.com",), subject="two", body="b")
    assert mailer.send(first, idempotency_key="k") == mailer.send(second, idempotency_key="k")
    assert mailer.sent == {"k": first}
