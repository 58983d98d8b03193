"""Stored bytes of a long 1 KB-per-turn chat on the AWS store (DynamoDB + S3 on moto), before
and after the sweeper clears the snapshot segments the worker's merges retired.

The worker Lambda may not delete payload objects, so the segments a merge replaced stay until
the sweeper (`durable_graph.leftovers.clear_leftovers`, the sweeper function's pass) deletes
them, `GRACE` after the worker left them (`docs/record-format.md` §7, §12). The chat runs
in-process on the backend the worker function builds (`payload_deletes` off, leftovers on the
table), the sweep on the sweeper's (payload deletes on), both over one moto account (under
`bench/moto_scaling.py`, which removes moto's own O(table) work per transaction). Stored bytes
are every table item (DynamoDB's size, `item_bodies.item_bytes`) plus every bucket object, by
kind; raw is the messages' JSON. Printed beside the same chat's embedded store (SQLite file +
payload folder, whose process deletes at once) in the same run. The budget: at most 2x raw.

    PYTHONPATH=. .venv/bin/python bench/long_threads.py aws-chat --turns 1000,10000
"""

from __future__ import annotations

import json
import operator
import tempfile
import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field

from bench.aws_requests import moto_world
from bench.long_threads import chat_messages, folder_bytes
from bench.moto_scaling import scaled_moto
from durable_graph import END, START, StateGraph
from durable_graph.backends.aws.factory import aws_backend
from durable_graph.backends.local import local_backend
from durable_graph.backends.snapshots import SEGMENT_CONTENT_TYPE
from durable_graph.bundle import build_bundle, verify_bundle
from durable_graph.clock import SystemClock
from durable_graph.leftovers import GRACE, clear_leftovers
from durable_graph.runtime import CompiledGraph
from durable_graph.verification import verify_thread
from tests.aws.stored import stored

MESSAGE_BYTES = 1024
NO_LIMIT = {"recursion_limit": 10**9}


class Chat(BaseModel):
    messages: Annotated[list[dict[str, Any]], operator.add] = Field(default_factory=list)
    turn: int = 0
    stop_at: int = 0


def chat_graph(turns: int) -> CompiledGraph:
    """`bench/long_threads.py`'s chat: one 1 KB message (JSON) a turn, text-like words."""
    texts = chat_messages(turns, MESSAGE_BYTES)

    def turn(state: Chat) -> dict[str, Any]:
        return {"messages": [texts[state.turn]], "turn": state.turn + 1}

    def again(state: Chat) -> str:
        return "turn" if state.turn < state.stop_at else END

    builder = StateGraph(Chat)
    builder.add_node("turn", turn)
    builder.add_edge(START, "turn")
    builder.add_conditional_edges("turn", again, {"turn": "turn", END: END})
    return builder.compile(name="bench.aws_chat_storage:chat")


def raw_bytes(values: Mapping[str, Any]) -> int:
    return sum(len(json.dumps(m)) for m in values["messages"])


def aws_chat(turns: int) -> dict[str, Any]:
    """The chat on moto by the worker's backend, then one sweep (the leftovers' `GRACE` later)."""
    clock = SystemClock()
    with scaled_moto(), moto_world() as (aws, resources):
        worker = aws_backend(resources.settings, aws, deletes_payloads=False, clock=clock)
        sweeper = aws_backend(resources.settings, aws, deletes_payloads=True, clock=clock)
        graph = chat_graph(turns)
        app = graph.with_backend(worker, clock=clock)
        start = time.perf_counter()
        app.invoke({"stop_at": turns}, NO_LIMIT, thread_id="chat")
        run_s = time.perf_counter() - start
        values = app.get_state("chat").values
        raw = raw_bytes(values)
        assert worker.leftovers is not None
        later = clock.now() + GRACE + timedelta(minutes=1)
        left = worker.leftovers.due(later, 10**6)
        before = stored(worker)
        cleared = clear_leftovers(sweeper, clock=clock, now=later, limit=10**6)
        after = stored(sweeper)
        reread = graph.with_backend(sweeper, clock=clock).get_state("chat").values
        return {
            "turns": turns,
            "raw": raw,
            "run_s": run_s,
            "left": len(left),
            "left_refs": sum(len(x.refs) for x in left),
            "deleted": cleared.deleted,
            "before": before,
            "after": after,
            "equal": reread == values,
            "verified": verify_thread(sweeper, "chat").ok,
            "bundle": verify_bundle(build_bundle(sweeper, "chat")).ok,
        }


def local_chat(turns: int) -> dict[str, Any]:
    """The same chat on the embedded store (its process deletes retired segments at once)."""
    with tempfile.TemporaryDirectory(prefix="aws-chat-local-") as tmp:
        backend = local_backend(Path(tmp) / "home")
        app = chat_graph(turns).with_backend(backend)
        app.invoke({"stop_at": turns}, NO_LIMIT, thread_id="chat")
        raw = raw_bytes(app.get_state("chat").values)
        backend.close()
        return {"raw": raw, "stored": folder_bytes(Path(tmp) / "home")}


def report(turns_list: list[int]) -> None:
    print("== aws-chat: a 1 KB-per-turn chat on DynamoDB + S3 (moto), stored bytes x raw")
    header = (
        f"{'turns':>6} | {'items':>6} {'segments':>8} {'snapshots':>9} {'total':>6} | "
        f"{'after sweep: items':>18} {'segments':>8} {'snapshots':>9} {'total':>6} | "
        f"{'left':>4} {'deleted':>7} | {'embedded':>8} | reads, verify, bundle"
    )
    print(header)
    print("-" * len(header))
    for turns in turns_list:
        aws = aws_chat(turns)
        local = local_chat(turns)
        raw = aws["raw"]

        def x(n: int, base: int = raw) -> str:
            return f"{n / base:.2f}"

        def kinds(s: Any) -> tuple[str, str, str, str]:
            segs = s.by_type.get(SEGMENT_CONTENT_TYPE, 0)
            return x(s.items), x(segs), x(s.objects - segs), x(s.total)

        b, a = kinds(aws["before"]), kinds(aws["after"])
        ok = "ok" if aws["equal"] and aws["verified"] and aws["bundle"] else "FAILED"
        total = aws["after"].total / raw
        verdict = "<=2x PASS" if total <= 2 else ">2x MISSED"
        print(
            f"{turns:>6} | {b[0]:>6} {b[1]:>8} {b[2]:>9} {b[3]:>6} | {a[0]:>18} {a[1]:>8} "
            f"{a[2]:>9} {a[3]:>6} | {aws['left']:>4} {aws['deleted']:>7} | "
            f"{x(local['stored'], local['raw']):>8} | {ok}; {verdict}; raw {raw:,} B, "
            f"chat run {aws['run_s']:.0f} s"
        )
    print(
        "columns: bytes / raw message JSON; items = every DynamoDB item, segments = snapshot "
        "segment objects, snapshots = every other S3 object (snapshot documents, chunks); "
        "left = leftovers the worker wrote, deleted = objects the sweep deleted"
    )


__all__ = ["aws_chat", "local_chat", "report"]
