"""Erasure reaches the mail a thread sent, as each backend keeps it: the embedded `mail` rows and
their `outbox/sent` files, the PostgreSQL backend's mail files, the memory mailer's dict. The
subject and body go; to whom it went stays, with who erased it and when (the fact the mail went
out is evidence too). What a mail service delivered (SES, on moto) cannot be recalled: the test
says so by finding it still there, while the store itself keeps none of it.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from durable_graph import END, START, NodeContext, StateGraph
from durable_graph.backend import Backend
from durable_graph.backends.aws.ses_mailer import SesMailer
from durable_graph.backends.local.file_copies import COPIES
from durable_graph.backends.local.outbox_mailer import OutboxMailer
from durable_graph.backends.local.row_bodies import decode_body
from durable_graph.checkpoint import Actor
from durable_graph.clock import ManualClock
from durable_graph.erasure import erase
from durable_graph.mail import ERASED_SUBJECT, EmailMessage, MemoryMailer
from durable_graph.verification import verify_thread
from tests.conformance.mailboxes import delivered
from tests.conformance.store_contents import contents
from tests.conformance.test_encryption import Encrypted

ALICE = Actor(kind="cli", id="dpo@example.com")
IBAN = "DE44 5001 0517 5407 3249 31"
TO = "cfo@example.com"


class Payment(BaseModel):
    payee: str = ""
    sent: str = ""


def send(state: Payment, ctx: NodeContext) -> dict[str, Any]:
    message = EmailMessage(to=(TO,), subject=f"pay {state.payee}",
                           body=f"Please wire EUR 900 to {state.payee} (IBAN {IBAN}).")  # fmt: skip
    sent = ctx.step("mail", lambda: ctx.mailer.send(message, idempotency_key=ctx.idempotency_key))
    return {"sent": sent}


def _graph() -> Any:
    builder = StateGraph(Payment)
    builder.add_node("send", send)
    builder.add_edge(START, "send")
    builder.add_edge("send", END)
    return builder.compile(name="tests.conformance.test_erasure_mail:graph")


graph = _graph()


def kept_mail(backend: Backend) -> bytes:
    """What the mailer keeps of the mail it sent, read from its storage: rows, files, dict."""
    mailer: Any = backend.mailer
    out: list[bytes] = []
    if isinstance(mailer, OutboxMailer):
        if mailer.db is not None:
            with mailer.db.read() as conn:
                rows = conn.execute("SELECT body FROM mail").fetchall()
            bodies = [decode_body(body) for (body,) in rows]
            out += [b if isinstance(b, bytes) else b.encode() for b in bodies]
        COPIES.drain()
        out += [p.read_bytes() for p in sorted(mailer.folder.glob("*.json"))]
    elif isinstance(mailer, MemoryMailer):
        out += [m.model_dump_json().encode() for m in mailer.sent.values()]
    else:
        assert isinstance(mailer, SesMailer), mailer
    return b"\n".join(out)


def test_erasing_a_value_scrubs_the_mail_the_thread_sent(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a thread that mailed a payment order naming the payee and their IBAN
    When the `payee` field is erased
    Then the mail the store keeps holds neither the payee nor the IBAN, reads back as erased
    (to the same recipient, saying who erased it), the other thread's mail is intact, no row,
    item or object holds the IBAN, and the thread verifies; SES delivered it already."""
    app = graph.with_backend(backend, clock=clock)
    app.invoke({"payee": "Jane Roe"}, thread_id="pay-1")
    app.invoke({"payee": "ACME GmbH"}, thread_id="pay-2")
    assert IBAN.encode() in kept_mail(backend) or isinstance(backend.mailer, SesMailer)

    record = erase(backend, "pay-1", fields=["payee"], reason="GDPR #20", actor=ALICE)

    assert record is not None
    kept = kept_mail(backend)
    assert b"Jane Roe" not in kept
    assert b"ACME GmbH" in kept or isinstance(backend.mailer, SesMailer)
    mail = delivered(backend)
    if isinstance(backend.mailer, SesMailer):  # delivered: out of our reach
        assert any("Jane Roe" in m.body for m in mail)
    else:
        erased = [m for m in mail if m.subject == ERASED_SUBJECT]
        assert [m.to for m in erased] == [(TO,)]
        assert f"by cli:dpo@example.com at {record.erased_at} (erasure 1)" in erased[0].body
        assert [m.subject for m in mail if m not in erased] == ["pay ACME GmbH"]
    assert "Jane Roe" not in json.dumps(contents(backend))
    report = verify_thread(backend, "pay-1")
    assert report.ok, report.reason
    again = erase(backend, "pay-1", fields=["payee"], reason="GDPR #20", actor=ALICE)
    assert again is None and kept_mail(backend) == kept


def test_sealed_mail_is_scrubbed_by_field_erasure(encrypted: Encrypted, clock: ManualClock) -> None:
    """Given an encrypted store, where the mail a thread sent is sealed under its key
    When a field is erased (the key stays: the other fields need it)
    Then the sealed message is replaced by the erased form (its recipients sealed again), and
    reads back as erased (SES: delivered, out of reach); the thread verifies."""
    backend = encrypted.backend
    app = graph.with_backend(backend, clock=clock)
    app.invoke({"payee": "Jane Roe"}, thread_id="pay-1")

    erase(backend, "pay-1", fields=["payee"], reason="GDPR #21", actor=ALICE)

    (message,) = delivered(backend)
    if isinstance(backend.mailer, SesMailer):  # delivered: out of our reach
        assert message.subject == "pay Jane Roe"
    else:
        assert (message.to, message.subject) == ((TO,), ERASED_SUBJECT)
    if isinstance(backend.mailer, OutboxMailer):  # the rows and files, sealed before
        kept = kept_mail(backend)
        assert b'"$erased"' in kept and b"cfo@example.com" not in kept, "recipients sealed"
    report = verify_thread(backend, "pay-1")
    assert report.ok, report.reason
