"""Salted parts of a record (a task argument, an interrupt payload, resume values, an io
response, an error message) stored and hashed to pinned bytes, and erased without changing
the hash (`docs/record-format.md`).
"""

from __future__ import annotations

from typing import Any

from durable_graph.canonical import digest
from durable_graph.checkpoint import (
    Actor,
    Checkpoint,
    ErrorInfo,
    GraphRef,
    InterruptInfo,
    IoRecord,
    ParentRef,
    Task,
)
from tests.unit.record_reference import reference_body, salted


def salted_record(*, erased: bool = False) -> Checkpoint:
    """A record whose every part carries its salt (records written since salted parts), or,
    `erased`, the same record with every part erased: each kept as its digest form alone."""
    graph = GraphRef(name="g", version="0123456789abcdef")
    salts = {name: f"{n:x}" * 64 for n, name in enumerate(("arg", "ask", "res", "io", "err"), 1)}
    arg: Any = {"to": "jane@example.org"}
    payload: Any = {"ask": "pay jane?"}
    resume: Any = ["yes", {"note": "ok"}]
    response: Any = "jane's balance: 12"
    message = "jane@example.org bounced"
    task_s: str | None = salts["arg"][:32]
    ask_s: str | None = salts["ask"][:32]
    io_s: str | None = salts["io"][:32]
    err_s: str | None = salts["err"][:32]
    resume_s = {"1:review": [salts["res"][:32], salts["res"][32:]]}
    io_sha = salted(salts["io"][:32], response)
    if erased:
        arg = {"$d": salted(salts["arg"][:32], arg)}
        payload = {"$d": salted(salts["ask"][:32], payload)}
        resume = [
            {"$d": salted(salts["res"][:32], "yes")},
            {"$d": salted(salts["res"][32:], {"note": "ok"})},
        ]
        response = None
        message = "$d:" + salted(salts["err"][:32], message)
        task_s = ask_s = io_s = err_s = None
        resume_s = {}
    return Checkpoint(
        format=2,
        thread_id="t-4",
        step=1,
        source="node",
        nodes=["draft"],
        parent=ParentRef(thread_id="t-4", step=0, hash="44" * 32),
        root="88" * 32,
        next=[Task(id="1:review", node="review", arg=arg, s=task_s), Task(id="1:b", node="b")],
        interrupt=InterruptInfo(node="review", when="during", payload=payload, s=ask_s),
        resume={"1:review": resume},
        resume_s=resume_s,
        io=[
            IoRecord(
                task_id="0:draft",
                name="llm#1",
                kind="record",
                request_sha256="99" * 32,
                response_sha256=io_sha,
                response=response,
                s=io_s,
            )
        ],
        error=ErrorInfo(
            node="send", task_id="1:b", type="Boom", message=message, attempts=1, s=err_s
        ),
        status="failed",
        graph=graph,
        created_at="2026-01-01T00:00:06.000000Z",
        actor=Actor(kind="worker", id="w-4"),
        prev_hash="44" * 32,
    )


PINNED_SALTED = (
    (
        '{"actor":{"id":"w-4","kind":"worker"},"created_at":"2026-01-01T00:00:06.000000Z","erro'
        'r":{"attempts":1,"message":"jane@example.org bounced","node":"send","s":"5555555555555'
        '5555555555555555555","task_id":"1:b","type":"Boom"},"format":2,"graph":{"name":"g","ve'
        'rsion":"0123456789abcdef"},"interrupt":{"node":"review","payload":{"ask":"pay jane?"},'
        '"s":"22222222222222222222222222222222","when":"during"},"io":[{"kind":"record","name":'
        '"llm#1","request_sha256":"999999999999999999999999999999999999999999999999999999999999'
        '9999","response":"jane\'s balance: 12","s":"44444444444444444444444444444444","task_id"'
        ':"0:draft"}],"next":[{"arg":{"to":"jane@example.org"},"id":"1:review","node":"review",'
        '"s":"11111111111111111111111111111111"},{"id":"1:b","node":"b"}],"nodes":["draft"],"pr'
        'ev_hash":"4444444444444444444444444444444444444444444444444444444444444444","resume":{'
        '"1:review":["yes",{"note":"ok"}]},"resume_s":{"1:review":["333333333333333333333333333'
        '33333","33333333333333333333333333333333"]},"root":"8888888888888888888888888888888888'
        '888888888888888888888888888888","source":"node","status":"failed","step":1,"thread_id"'
        ':"t-4"}'
    ),
    (
        '{"actor":{"id":"w-4","kind":"worker"},"created_at":"2026-01-01T00:00:06.000000Z","erro'
        'r":{"attempts":1,"message":"$d:12d814c81e29a80f88706d973fb56d4e22c483c94c3043dcca5008c'
        '76a7d83b0","node":"send","task_id":"1:b","type":"Boom"},"format":2,"graph":{"name":"g"'
        ',"version":"0123456789abcdef"},"interrupt":{"node":"review","payload":{"$d":"03c5a7c96'
        '62c0d24bda126640f54f98c852cb04a4015fd5f5129daf03e189c5e"},"when":"during"},"io":[{"kin'
        'd":"record","name":"llm#1","request_sha256":"99999999999999999999999999999999999999999'
        '99999999999999999999999","response_sha256":"271514355ba87e3cd37c38b39072bdc61e8f2528c2'
        'b65337e3871fa23c84e0b9","task_id":"0:draft"}],"next":[{"arg":{"$d":"2a78c31fe9e81d6c51'
        'f19cea2e0301ed91ebee548d36d6f24372656880354c68"},"id":"1:review","node":"review"},{"id'
        '":"1:b","node":"b"}],"nodes":["draft"],"prev_hash":"4444444444444444444444444444444444'
        '444444444444444444444444444444","resume":{"1:review":[{"$d":"713ad5a839e802454e005f223'
        'bcdacdfa41b3f3056d919eebbece3365e5641f0"},{"$d":"8191640ebe3de7e7781d63d3641d71d2f7dcd'
        'd5332ecff8e4de4eb1b767b878e"}]},"root":"8888888888888888888888888888888888888888888888'
        '888888888888888888","source":"node","status":"failed","step":1,"thread_id":"t-4"}'
    ),
    "8594867a4ef4406167340e63108aafe150f4a807546d368be7176365f4cc23c6",
)


def test_salted_parts_store_and_hash_to_their_pinned_bytes_and_erasing_them_keeps_the_hash() -> (
    None
):
    """Given a record whose task argument, interrupt payload, resume values, io response and
    error message each carry a salt
    Then its row and hash are the pinned ones, and the hash is what the format defines (each
    part by its salted digest); the record with every part erased (the value and salt gone,
    the digest form kept) is stored as pinned and hashes the same; a value, salt or digest
    changed in either changes the hash."""
    row, erased_row, hashed = PINNED_SALTED
    record, erased = salted_record(), salted_record(erased=True)
    assert record.to_stored_json() == row
    assert erased.to_stored_json() == erased_row
    for text in (row, erased_row):
        again = Checkpoint.from_stored_json(text).with_io_restored()
        assert again.compute_hash() == digest(reference_body(again)) == hashed
    assert "jane" not in erased_row
    salts_of_note = record.resume_s["1:review"][1]
    tampered = [
        record.model_copy(update={"resume": {"1:review": ["no", {"note": "ok"}]}}),
        record.model_copy(update={"resume_s": {"1:review": ["ab" * 16, salts_of_note]}}),
        record.model_copy(
            update={"error": record.error.model_copy(update={"s": "cd" * 16})}  # type: ignore[union-attr]
        ),
        erased.model_copy(
            update={"next": [erased.next[0].model_copy(update={"arg": {"$d": "0" * 64}})]}
        ),
    ]
    for changed in tampered:
        assert changed.with_io_restored().compute_hash() != hashed
