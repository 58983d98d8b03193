"""The record format is a contract (`docs/record-format.md`): for the same record, the stored
row and the hash are the same bytes whatever code writes them. These rows and hashes were written
by the pydantic `model_dump` serialisation the format was defined with; any faster writer must
keep writing them byte for byte, and a record sealed by a real flow must store exactly what that
definition gives."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from durable_graph.backends.local import local_backend
from durable_graph.canonical import compact_json, digest
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
from examples.email_approval import graph as email_graph
from tests.ledger.graphs import graph as chat_graph


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


PINNED = [
    (
        '{"actor":{"id":"w-1","kind":"system"},"changes":{"a":{"d":"1111111111111111111111111'
        '111111111111111111111111111111111111111","op":"set","s":"222222222222222222222222222'
        '22222","v":{"x":[1,2.5,"é",null,true],"y":1.0}},"big":{"d":"abababababababababababab'
        'abababababababababababababababababababab","op":"set","ref":{"content_type":"applicat'
        'ion/vnd.durable-graph.chunk+json","sha256":"abababababababababababababababababababab'
        'abababababababababababab","size":5000,"uri":"sha256/ab/cdef"}}},"created_at":"2026-0'
        '1-01T00:00:00.000000Z","format":2,"graph":{"name":"g","version":"0123456789abcdef"},'
        '"hash":"4444444444444444444444444444444444444444444444444444444444444444","next":[{"'
        'id":"0:draft","node":"draft"}],"root":"333333333333333333333333333333333333333333333'
        '3333333333333333333","route":[{"kind":"edge","result":["draft"],"source":"__start__"'
        '}],"source":"input","status":"running","step":0,"thread_id":"t-1"}',
        "981d23339db6a77acae012209c09450a00d0a81fab858c6ec2385186966d12a4",
    ),
    (
        '{"actor":{"id":"w-2","kind":"worker"},"anchor":1,"attempt":2,"changes":{"gone":{"op"'
        ':"del"},"kept":{"d":"abababababababababababababababababababababababababababababababa'
        'b","op":"keep","ref":{"content_type":"application/vnd.durable-graph.chunk+json","sha'
        '256":"abababababababababababababababababababababababababababababababab","size":5000,'
        '"uri":"sha256/ab/cdef"}},"m":{"d":"7777777777777777777777777777777777777777777777777'
        '777777777777777","e":"sealed-text","op":"merge"},"msgs":{"d":"5555555555555555555555'
        '555555555555555555555555555555555555555555","op":"add","s":"666666666666666666666666'
        '66666666","v":["hello",{"n":3,"role":"ai"}]}},"created_at":"2026-01-01T00:00:01.5000'
        '00Z","duration_ms":12.345,"format":2,"graph":{"name":"g","version":"0123456789abcdef'
        '"},"hash":"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc","interr'
        'upt":{"node":"review","payload":{"ask":"ok?"},"task_id":"1:review","when":"before"},'
        '"io":[{"kind":"record","name":"llm#1","request_sha256":"9999999999999999999999999999'
        '999999999999999999999999999999999999","response":{"body":"hi"},"response_sha256":"aa'
        'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","task_id":"0:draft"}'
        ',{"kind":"step","name":"send","response_sha256":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'
        'bbbbbbbbbbbbbbbbbbbbbbbbbbbbb","task_id":"0:draft"},{"kind":"record","name":"llm#2",'
        '"task_id":"0:draft"}],"io_in":{"2":["msgs",1]},"next":[{"arg":{"q":1},"done_at":1,"i'
        'd":"1:review","node":"review"},{"id":"1:b","node":"b"}],"nodes":["draft"],"prev_hash'
        '":"4444444444444444444444444444444444444444444444444444444444444444","resume":{"1:re'
        'view":[true,"yes"]},"root":"88888888888888888888888888888888888888888888888888888888'
        '88888888","route":[{"kind":"conditional","result":["review","b"],"router":"pick","so'
        'urce":"draft"}],"snap":{"content_type":"application/vnd.durable-graph.chunk+json","s'
        'ha256":"abababababababababababababababababababababababababababababababab","size":500'
        '0,"uri":"sha256/ab/cdef"},"source":"node","status":"suspended","step":1,"thread_id":'
        '"t-1"}',
        "d14f645e4ce156dcfabbafe1aa9bd4092655810bf1beb643d611eb1d56b4e3d8",
    ),
    (
        '{"actor":{"id":"b@x","kind":"human"},"created_at":"2026-01-01T00:00:04.000000Z","dur'
        'ation_ms":3.0,"error":{"attempts":3,"message":"it broke","node":"send","retryable":f'
        'alse,"task_id":"3:send","type":"Boom"},"format":2,"graph":{"name":"g","version":"012'
        '3456789abcdef"},"hash":"eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee'
        'eeee","io_ref":{"content_type":"application/vnd.durable-graph.chunk+json","sha256":"'
        'abababababababababababababababababababababababababababababababab","size":5000,"uri":'
        '"sha256/ab/cdef"},"next_ref":{"content_type":"application/vnd.durable-graph.chunk+js'
        'on","sha256":"abababababababababababababababababababababababababababababababab","siz'
        'e":5000,"uri":"sha256/ab/cdef"},"parent":{"hash":"cccccccccccccccccccccccccccccccccc'
        'cccccccccccccccccccccccccccccc","step":1,"thread_id":"t-1"},"prev_hash":"ddddddddddd'
        'ddddddddddddddddddddddddddddddddddddddddddddddddddddd","signoff":{"approvals":[{"act'
        'or":{"id":"a@x","kind":"human"},"at":"2026-01-01T00:00:02.000000Z","email":"a@x","ke'
        'y":"k1","method":"oidc","via":"link:1"},{"actor":{"id":"b@x","kind":"human"},"at":"2'
        '026-01-01T00:00:03.000000Z","decision":"reject","key":"k2"}],"rule":{"approvals_requ'
        'ired":2,"requester_field":"owner","requester_may_approve":false,"sign_in_required":t'
        'rue}},"source":"fork","status":"failed","step":4,"thread_id":"t-2"}',
        "5dd74f4b350ba383d981d3470ddf935cc70a1e4a10903e3c7a8aed36fa0f9ed3",
    ),
    (
        '{"actor":{"id":"w-3","kind":"worker"},"created_at":"2026-01-01T00:00:05.000000Z","du'
        'ration_ms":1.25,"format":1,"graph":{"name":"g","version":"0123456789abcdef"},"hash":'
        '"0202020202020202020202020202020202020202020202020202020202020202","next":[{"id":"1:'
        'a","node":"a"}],"nodes":["a"],"parent":{"hash":"010101010101010101010101010101010101'
        '0101010101010101010101010101","step":0,"thread_id":"t-3"},"prev_hash":"0101010101010'
        '101010101010101010101010101010101010101010101010101","source":"node","status":"runni'
        'ng","step":1,"thread_id":"t-3","values":{"f":0.5,"n":2,"s":"xxx"}}',
        "6d3633d8b33b375ecbab25e88bc28550e0521490c093aabcca87c4b7708da8d3",
    ),
]


@pytest.mark.parametrize("index", range(len(PINNED)))
def test_a_record_stores_and_hashes_to_its_pinned_bytes(index: int) -> None:
    """Given a record with every field, then its row and hash are the pinned ones, and the row
    read back stores the same row and hashes the same."""
    record = records()[index]
    row, hashed = PINNED[index]
    assert record.to_stored_json() == row
    assert record.compute_hash() == hashed
    again = Checkpoint.from_stored_json(row)
    assert again.to_stored_json() == row
    assert again.with_io_restored().compute_hash() == hashed


def reference_row(record: Checkpoint) -> str:
    """The stored row as the format defines it: the stored form's `model_dump` in JSON mode,
    defaults left out, its format written, a format-2 parent that is the previous step left
    out."""
    stored = record.stored()
    doc = stored.model_dump(mode="json", exclude_defaults=True)
    doc["format"] = stored.format
    parent = stored.parent
    previous = (record.thread_id, record.step - 1, record.prev_hash)
    if (
        stored.format >= 2
        and stored.step > 0
        and parent is not None
        and (parent.thread_id, parent.step, parent.hash) == previous
    ):
        doc.pop("parent")
    return compact_json(doc)


def reference_body(record: Checkpoint) -> dict[str, Any]:
    """What the hash covers, as the format defines it (`docs/record-format.md` §4)."""
    if record.format == 1:
        fields = {
            "thread_id", "step", "parent", "source", "nodes", "values", "next", "route",
            "interrupt", "resume", "io", "status", "error", "graph", "created_at",
            "duration_ms", "attempt", "actor", "prev_hash",
        }  # fmt: skip
        body = record.model_dump(mode="json", include=fields)
        for task in body["next"]:
            task.pop("done_at", None)
        return body
    include = {
        "format", "thread_id", "step", "parent", "source", "nodes", "root", "route",
        "interrupt", "resume", "status", "error", "graph", "created_at", "duration_ms",
        "attempt", "actor", "prev_hash", "next_ref", "io_ref",
    }  # fmt: skip
    if record.next_ref is None:
        include.add("next")
    if record.io_ref is None:
        include.add("io")
    if record.signoff is not None:
        include.add("signoff")
    body = record.model_dump(mode="json", include=include)
    body["changes"] = {name: {"op": c.op, "d": c.d} for name, c in record.changes.items()}
    # A salted part is hashed by the sha256 of JCS({"s": salt, "v": the part as stored}).
    for task in body.get("next", ()):
        if "s" in task:
            task["arg"] = {"$d": salted(task.pop("s"), task["arg"])}
    for part, key in (("interrupt", "payload"), ("error", "message")):
        if body[part] is not None and "s" in body[part]:
            hashed = salted(body[part].pop("s"), body[part][key])
            body[part][key] = {"$d": hashed} if key == "payload" else "$d:" + hashed
    for io in body.get("io", ()):
        if "s" in io:
            io["response_sha256"] = salted(io.pop("s"), io["response"])
            io["response"] = None
    for task_id, salts in record.resume_s.items():
        values = body["resume"][task_id]
        body["resume"][task_id] = [
            {"$d": salted(salt, value)} if salt else value
            for salt, value in zip(salts, values, strict=True)
        ]
    return body


def salted(salt: str, value: Any) -> str:
    return hashlib.sha256(rfc8785.dumps({"s": salt, "v": value})).hexdigest()


def test_every_record_of_real_flows_is_stored_and_hashed_as_the_format_defines(
    tmp_path: Path,
) -> None:
    """Given the seed approval flow and a 70-turn chat (lists growing, fields kept, io
    responses pointed to), when every record is read back, then its row and hash are what the
    format's definition gives, and its hash is the one it was sealed with."""
    backend = local_backend(tmp_path / "home")
    email = email_graph.with_backend(backend)
    for n in range(3):
        email.invoke({"user_prompt": f"pay {n}"}, thread_id=f"e-{n}")
        email.resume(f"e-{n}", values={"approved": n != 1}, as_node="human_review")
    chat = chat_graph.with_backend(backend)
    chat.invoke({"limit": 70, "attachment": "A" * 5000}, {"recursion_limit": 1000}, thread_id="c")
    seen = 0
    for thread in ("e-0", "e-1", "e-2", "c"):
        for record in backend.checkpoints.list_checkpoints(thread, newest_first=False):
            assert record.to_stored_json() == reference_row(record)
            assert record.compute_hash() == digest(reference_body(record)) == record.hash
            seen += 1
        for stored in backend.checkpoints.ledger(thread):
            restored = stored.with_io_restored()
            assert restored.compute_hash() == digest(reference_body(restored)) == stored.hash
    assert seen > 80
    backend.close()


def _any_fields(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    """`Model.field` for every field typed `Any` (alone, or inside a list, dict or union) of
    `model` and the record models it holds."""
    found: set[str] = set()
    if model in seen:
        return found
    seen.add(model)
    for name, info in model.model_fields.items():
        stack: list[Any] = [info.annotation]
        while stack:
            kind = stack.pop()
            if kind is Any:
                found.add(f"{model.__name__}.{name}")
            elif isinstance(kind, type) and issubclass(kind, BaseModel):
                found |= _any_fields(kind, seen)
            else:
                stack.extend(get_args(kind))
    return found


def test_every_free_form_field_is_one_the_fast_writer_checks() -> None:
    """The hash body and stored row are written without walking them when their free-form
    parts hold plain JSON (`Checkpoint._plain`): so every field typed `Any` must be one it
    checks (or, like `values`, in neither). A new one fails here until it is added there."""
    assert _any_fields(Checkpoint, set()) == {
        "Change.v",
        "Task.arg",
        "InterruptInfo.payload",
        "IoRecord.response",
        "Checkpoint.values",
        "Checkpoint.resume",
        "Checkpoint.io_in",
    }


def test_a_record_built_from_its_fields_is_the_one_model_construct_builds() -> None:
    """`Checkpoint.built` (the sealer's unvalidated constructor) gives what pydantic's
    `model_construct` gives: equal, dumped alike, and a missing field is refused."""
    for record in records():
        fields = dict(record.__dict__)
        built = Checkpoint.built(**fields)
        constructed = Checkpoint.model_construct(**fields)
        assert built == constructed == record
        assert built.model_dump() == constructed.model_dump()
        assert list(built.model_dump()) == list(constructed.model_dump())
        assert built.model_fields_set == constructed.model_fields_set
        del fields["hash"]
        with pytest.raises(KeyError):
            Checkpoint.built(**fields)


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    value=_json,
    arg=_json,
    payload=_json,
    response=_json,
    field=st.text(min_size=1, max_size=4),
    duration=st.floats(min_value=0, max_value=1e20, allow_nan=False),
)
def test_property_any_free_form_part_stores_and_hashes_as_the_format_defines(
    value: Any, arg: Any, payload: Any, response: Any, field: str, duration: float
) -> None:
    """For any JSON in a record's free-form parts (a change value and its field's name, a
    task argument, an interrupt payload, a resume value, an io response) and any duration,
    the row and hash are what the format's definition gives, whether the fast writer takes
    the record or leaves it to the full encoders."""
    base = records()[1]
    record = base.model_copy(
        update={
            "changes": {field: Change(op="set", d="55" * 32, s="66" * 16, v=value)},
            "next": [Task(id="1:x", node="x", arg=arg)],
            "interrupt": InterruptInfo(node="x", when="during", payload=payload),
            "resume": {"1:x": [value, payload]},
            "io": [
                IoRecord(
                    task_id="1:x",
                    name="n",
                    kind="record",
                    response_sha256="aa" * 32,
                    response=response,
                )
            ],
            "duration_ms": duration,
        }
    )
    assert record.to_stored_json() == reference_row(record)
    assert record.compute_hash() == digest(reference_body(record))


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
