"""The mail port: how a node sends an email without knowing where it runs.

A node calls `ctx.mailer.send(message, idempotency_key=ctx.idempotency_key)` inside
`ctx.step(...)`; the backend decides what sending means. Embedded, the message is a row of the
store, copied to a JSON file in its outbox (`<home>/outbox/sent/<key>.json`,
`backends/local/outbox_mailer.py`); on AWS it goes out through Amazon SES from the deployment's
verified identity (`backends/aws/ses_mailer.py`); in memory it is kept in a dict. The working
directory plays no part: on Lambda it is `/var/task`, which is read-only.

Exactly-once is the engine's job, not the mailer's: `ctx.step` records the mailer's answer
before the node goes on and replays it on every later run of the task, so a redelivered or
retried task does not send again. Only a crash *inside* the send (after SES accepted the message,
before its id was recorded) can send twice; the idempotency key travels with the message (a file
name embedded, an SES message tag on AWS) so that a receiver can drop the duplicate.

Example:
    >>> from durable_graph.mail import EmailMessage, MemoryMailer
    >>> mailer = MemoryMailer()
    >>> message = EmailMessage(to=["cfo@example.com"], subject="Hi", body="Hello")
    >>> mailer.send(message, idempotency_key="k1") == mailer.send(message, idempotency_key="k1")
    True
    >>> len(mailer.sent)
    1
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Collection, Mapping
from typing import Annotated, Any, Protocol, runtime_checkable

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from durable_graph.errors import PermanentTaskError

__all__ = [
    "ERASED_SUBJECT",
    "EmailMessage",
    "MailLog",
    "Mailer",
    "MailerMissing",
    "MemoryMailer",
    "check_address",
    "erased_message",
    "task_key",
]

ERASED_SUBJECT = "(erased)"

# Deliberately loose (RFC 5321 addresses are not a regular language): one `@`, no spaces, a dot
# in the domain. It catches the common mistakes (a name instead of an address, a missing domain)
# with a message naming the field; the mail service has the last word.
_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
# An idempotency key becomes a file name and an SES tag value: keep it to characters both accept.
_KEY = re.compile(r"^[A-Za-z0-9_.@-]{1,128}$")


def check_address(value: str) -> str:
    """Return `value` if it looks like a bare email address, else raise `ValueError`."""
    if not _ADDRESS.match(value):
        raise ValueError(f"not an email address: {value!r} (expected name@domain.tld)")
    return value


def check_key(value: str) -> str:
    """Return `value` if it can name a message everywhere, else raise `ValueError`."""
    if not _KEY.match(value):
        raise ValueError(f"idempotency key {value!r}: 1-128 of A-Z a-z 0-9 _ . @ -")
    return value


Address = Annotated[str, AfterValidator(check_address)]


class EmailMessage(BaseModel):
    """A plain-text email. The sender is the backend's (its verified identity on AWS)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    to: tuple[Address, ...] = Field(min_length=1, max_length=50)
    subject: str = Field(min_length=1, max_length=998)  # RFC 5322 line limit
    body: str


class Mailer(Protocol):
    """Sends one message; the answer is the message id to record (`ctx.step` keeps it)."""

    def send(self, message: EmailMessage, *, idempotency_key: str) -> str:
        """Send `message`, tagged with `idempotency_key`, and return its message id.

        Raises `TransientError` when the service asks to retry, another `DurableGraphError`
        when it refuses the message for good (unverified sender, rejected recipient)."""
        ...


def task_key(thread_id: str, task_id: str) -> str:
    """`ctx.idempotency_key` of a task: stable across every run of it, and what erasure looks
    the mail a thread sent up by (`MailLog`)."""
    return hashlib.sha256(f"{thread_id}\x00{task_id}".encode()).hexdigest()[:32]


def erased_message(to: Collection[str], erased: Mapping[str, Any]) -> EmailMessage:
    """How a sent message reads once erased: to whom it went, and who erased the rest."""
    return EmailMessage(
        to=tuple(to),
        subject=ERASED_SUBJECT,
        body=f"erased by {erased.get('by')} at {erased.get('at')} "
        f"(erasure {erased.get('erasure')})",
    )


@runtime_checkable
class MailLog(Protocol):
    """Optional capability of a mailer that keeps what it sent (the embedded `mail` rows and
    `outbox/sent` files, the memory dict); SES keeps nothing of ours."""

    def forget_mail(
        self, keys: Collection[str], erased: Mapping[str, Any], cipher: Any = None
    ) -> int:
        """Erasure: drop the subject and body of the messages sent under `keys`, keeping to
        whom each went and `erased` (`{"by", "at", "erasure"}`) in their place; a sealed one is
        opened with `cipher` (the thread's data key) for its recipients, or left as it is
        without one (its key is destroyed). Returns how many were scrubbed."""
        ...


class MailerMissing(PermanentTaskError):
    """The node wants to send mail but this backend was configured without a mailer."""

    code = "mailer_missing"


class MemoryMailer:
    """Implements `Mailer` in memory (the memory backend's): one message per idempotency key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent: dict[str, EmailMessage] = {}

    def send(self, message: EmailMessage, *, idempotency_key: str) -> str:
        check_key(idempotency_key)
        with self._lock:
            self.sent.setdefault(idempotency_key, message)
        return idempotency_key

    def forget_mail(
        self, keys: Collection[str], erased: Mapping[str, Any], cipher: Any = None
    ) -> int:
        del cipher  # kept in the clear
        done = 0
        with self._lock:
            for key in set(keys) & set(self.sent):
                message = self.sent[key]
                if message.subject != ERASED_SUBJECT:
                    self.sent[key] = erased_message(message.to, erased)
                    done += 1
        return done
