"""Records with every field the record format has, set and left at its default, nested too:
the samples the record-bytes tests pin, copy and rebuild.
"""

from __future__ import annotations

from collections.abc import Iterator

from durable_graph.canonical import digest
from durable_graph.checkpoint import (
    Actor,
    Approval,
    Change,
    Checkpoint,
    ErrorInfo,
    GraphRef,
    InterruptInfo,
    IoRecord,
    ParentRef,
    PayloadRef,
    RouteDecision,
    RuleInfo,
    SignOffRecord,
    Task,
)


def records() -> list[Checkpoint]:
    """Records with every field the format has, set and left at its default, nested too."""
    return list(_records())


def _records() -> Iterator[Checkpoint]:
    ref = PayloadRef(
        uri="sha256/ab/cdef",
        sha256="ab" * 32,
        size=5000,
        content_type="application/vnd.durable-graph.chunk+json",
    )
    graph = GraphRef(name="g", version="0123456789abcdef")
    yield Checkpoint(
        format=2,
        thread_id="t-1",
        step=0,
        source="input",
        nodes=[],
        values={"a": 1},
        changes={
            "a": Change(
                op="set", d="11" * 32, s="22" * 16, v={"x": [1, 2.5, "é", None, True], "y": 1.0}
            ),
            "big": Change(op="set", d="ab" * 32, ref=ref),
        },
        root="33" * 32,
        digests={"a": "11" * 32},
        anchors={"a": 0},
        chunks={"big": ref},
        next=[Task(id="0:draft", node="draft")],
        route=[RouteDecision(source="__start__", kind="edge", result=["draft"])],
        status="running",
        graph=graph,
        created_at="2026-01-01T00:00:00.000000Z",
        duration_ms=0.0,
        actor=Actor(kind="system", id="w-1"),
        hash="44" * 32,
    )
    yield Checkpoint(
        format=2,
        thread_id="t-1",
        step=1,
        source="node",
        nodes=["draft"],
        parent=ParentRef(thread_id="t-1", step=0, hash="44" * 32),
        changes={
            "msgs": Change(op="add", d="55" * 32, s="66" * 16, v=["hello", {"role": "ai", "n": 3}]),
            "gone": Change(op="del"),
            "kept": Change(op="keep", d="ab" * 32, ref=ref),
            "m": Change(op="merge", d="77" * 32, e="sealed-text"),
        },
        root="88" * 32,
        anchor=1,
        snap=ref,
        next=[
            Task(id="1:review", node="review", arg={"q": 1}, done_at=1),
            Task(id="1:b", node="b"),
        ],
        route=[
            RouteDecision(source="draft", kind="conditional", router="pick", result=["review", "b"])
        ],
        interrupt=InterruptInfo(
            node="review", when="before", payload={"ask": "ok?"}, task_id="1:review"
        ),
        resume={"1:review": [True, "yes"]},
        io=[
            IoRecord(
                task_id="0:draft",
                name="llm#1",
                kind="record",
                request_sha256="99" * 32,
                response_sha256="aa" * 32,
                response={"body": "hi"},
            ),
            IoRecord(task_id="0:draft", name="send", kind="step", response_sha256="bb" * 32),
            IoRecord(
                task_id="0:draft",
                name="llm#2",
                kind="record",
                response_sha256=digest({"role": "ai", "n": 3}),
                response={"role": "ai", "n": 3},
            ),
        ],
        status="suspended",
        graph=graph,
        created_at="2026-01-01T00:00:01.500000Z",
        duration_ms=12.345,
        attempt=2,
        actor=Actor(kind="worker", id="w-2"),
        prev_hash="44" * 32,
        hash="cc" * 32,
    )
    yield Checkpoint(
        format=2,
        thread_id="t-2",
        step=4,
        source="fork",
        parent=ParentRef(thread_id="t-1", step=1, hash="cc" * 32),
        next_ref=ref,
        io_ref=ref,
        error=ErrorInfo(
            node="send",
            task_id="3:send",
            type="Boom",
            message="it broke",
            attempts=3,
            retryable=False,
        ),
        signoff=SignOffRecord(
            rule=RuleInfo(
                approvals_required=2,
                requester_may_approve=False,
                requester_field="owner",
                sign_in_required=True,
            ),
            approvals=[
                Approval(
                    actor=Actor(kind="human", id="a@x"),
                    key="k1",
                    email="a@x",
                    method="oidc",
                    via="link:1",
                    at="2026-01-01T00:00:02.000000Z",
                ),
                Approval(
                    actor=Actor(kind="human", id="b@x"),
                    key="k2",
                    decision="reject",
                    at="2026-01-01T00:00:03.000000Z",
                ),
            ],
        ),
        status="failed",
        graph=graph,
        created_at="2026-01-01T00:00:04.000000Z",
        duration_ms=3.0,
        actor=Actor(kind="human", id="b@x"),
        prev_hash="dd" * 32,
        hash="ee" * 32,
    )
    yield Checkpoint(
        format=1,
        thread_id="t-3",
        step=1,
        source="node",
        nodes=["a"],
        parent=ParentRef(thread_id="t-3", step=0, hash="01" * 32),
        values={"n": 2, "s": "x" * 3, "f": 0.5},
        next=[Task(id="1:a", node="a")],
        status="running",
        graph=graph,
        created_at="2026-01-01T00:00:05.000000Z",
        duration_ms=1.25,
        actor=Actor(kind="worker", id="w-3"),
        prev_hash="01" * 32,
        hash="02" * 32,
    )
