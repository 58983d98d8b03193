"""Encryption at rest of everything a thread stores besides its state and io responses, on
every backend: task arguments (a `Send`'s), queued task messages, the interrupt payload and the
notification that carries it, resume values, a failure's error message, a `ctx.step` result and
the mail a node sent. One thread does all of it; then no byte of the store (every SQLite file,
the payload folder and outbox, every moto item and S3 object, every PostgreSQL row and the mail
folder) holds the marker, reads give every part back with the key, and after erasure by key
destruction every part reads as erased and the mail no longer opens.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

from durable_graph import NodeContext, Send
from durable_graph.backends.local.outbox_mailer import OutboxMailer
from durable_graph.clock import ManualClock
from durable_graph.erasure import erase
from durable_graph.erasure_record import ERASED
from durable_graph.errors import DataKeyUnavailable, ThreadFailed
from durable_graph.mail import EmailMessage
from durable_graph.ports.notifier import NotificationLog
from durable_graph.sealed_fields import open_interrupt_payload
from durable_graph.verification import verify_thread
from tests.conformance.parts_graph import parts_graph
from tests.conformance.test_encryption import ALICE, Encrypted, holds

MARK = "MARKER-4711-jane"


class Everything(BaseModel):
    docs: list[str] = Field(default_factory=list)
    done: Annotated[list[str], operator.add] = Field(default_factory=list)
    answer: str = ""


def fan_out(state: Everything) -> list[Send]:
    return [Send("work", {"doc": f"{MARK} {doc}"}) for doc in state.docs]


def work(arg: dict[str, str], ctx: NodeContext) -> dict[str, Any]:
    def send() -> dict[str, str]:
        message = EmailMessage(to=("jane@example.org",), subject="re", body=f"{arg['doc']} mail")
        sent = ctx.mailer.send(message, idempotency_key=ctx.idempotency_key)
        return {"id": sent, "note": f"{MARK} receipt"}

    receipt = ctx.step("mail", send)
    return {"done": [receipt["id"]]}


graph = parts_graph(
    "tests.conformance.test_encryption_parts:graph", Everything, MARK, fan_out, work
)


def run_everything(encrypted: Encrypted, clock: ManualClock) -> Any:
    """The thread: a fan-out of two `Send`s that each mail and record a `ctx.step` result, an
    interrupt with a payload, a resume value, then a node failing with the marker."""
    app = graph.with_backend(encrypted.backend, clock=clock)
    app.invoke({"docs": ["a", "b"]}, thread_id="all")
    assert app.get_state("all").next == ("ask",)
    with pytest.raises(ThreadFailed):
        app.resume("all", resume_value=f"{MARK} resume")
    return app


def test_every_part_of_a_thread_is_sealed_and_reads_back(
    encrypted: Encrypted, clock: ManualClock
) -> None:
    """Given a store with encryption on
    When a thread sends `Send` args, mails, records a `ctx.step` result, suspends with a
    payload (a notification), is resumed with a value and fails with the marker in its error
    Then no stored byte holds the marker, while the key reads every part back."""
    backend = encrypted.backend
    app = run_everything(encrypted, clock)

    stored = encrypted.stored()
    assert holds(stored, "tests.conformance.test_encryption_parts:graph"), "rows are read"
    assert not holds(stored, MARK)
    history = {c.step: c for c in backend.checkpoints.list_checkpoints("all")}
    args = [t.arg for c in history.values() for t in c.next if t.arg is not None]
    assert sorted(a["doc"] for a in args) == [f"{MARK} a", f"{MARK} b"]
    suspended = next(c for c in history.values() if c.interrupt and c.interrupt.payload)
    assert suspended.interrupt is not None
    assert suspended.interrupt.payload == {"question": f"{MARK} approve?"}
    assert any(v == [f"{MARK} resume"] for c in history.values() for v in c.resume.values())
    head = backend.checkpoints.get_thread("all")
    assert head is not None and head.error is not None and MARK in head.error.message
    assert app.get_state("all").values["answer"] == "yes"
    if isinstance(backend.mailer, OutboxMailer):
        mail = backend.mailer.read_all(backend.checkpoints.keys)
        assert sorted(m.body for m in mail.values()) == [f"{MARK} a mail", f"{MARK} b mail"]
    notifier = backend.notifier
    if isinstance(notifier, NotificationLog):
        [note] = [n for n in notifier.read_all("all") if n.kind == "suspended"]
        assert backend.checkpoints.keys is not None
        cipher = backend.checkpoints.keys.cipher("all")
        assert open_interrupt_payload(note.payload, cipher) == {"question": f"{MARK} approve?"}
    report = verify_thread(backend, "all")
    assert report.ok, report.reason


def test_key_destruction_covers_every_part(encrypted: Encrypted, clock: ManualClock) -> None:
    """Given the same thread
    When it is erased whole (its data key destroyed)
    Then the interrupt payload, resume values, task arguments and error message read as
    erased by that erasure, the mail no longer opens, and `verify` still passes."""
    backend = encrypted.backend
    run_everything(encrypted, clock)

    record = erase(backend, "all", reason="GDPR Art. 17 #15", actor=ALICE)

    assert record is not None and record.data_key
    history = backend.checkpoints.list_checkpoints("all")
    suspended = next(c for c in history if c.interrupt and c.interrupt.payload)
    assert suspended.interrupt is not None
    assert suspended.interrupt.payload[ERASED]["erasure"] == record.seq
    assert all(ERASED in v[0] for c in history for v in c.resume.values())
    assert all(ERASED in t.arg for c in history for t in c.next if t.arg is not None)
    head = backend.checkpoints.get_thread("all")
    assert head is not None and head.error is not None
    assert MARK not in head.error.message and "erased" in head.error.message
    if isinstance(backend.mailer, OutboxMailer):
        with pytest.raises(DataKeyUnavailable, match="destroyed"):
            backend.mailer.read_all(backend.checkpoints.keys)
    report = verify_thread(backend, "all")
    assert report.ok, report.reason
