"""The seed's approval flow (run → suspend → resume → complete), N threads, on durable-graph's
embedded store and on LangGraph + SqliteSaver, in the same run, on the same disk.

Prints threads per second, bytes on disk per thread and SQLite commits per thread, side by side,
with the ratio. durable-graph commits every step durably (WAL, synchronous=FULL) before the next
is scheduled. LangGraph is measured with `durability="sync"` (each checkpoint written before the
next step; the fair comparison) and with its default (`"async"`).

    .venv/bin/python bench/approval_throughput.py [--threads 200]
"""

from __future__ import annotations

import argparse
import operator
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypedDict

from durable_graph.backends.local import local_backend
from durable_graph.backends.local.db import DurableCommits
from durable_graph.backends.local.sqlite_queue import SqliteQueue
from examples.email_approval import graph as email_graph


@dataclass
class Result:
    name: str
    threads: int
    seconds: float
    bytes_on_disk: int
    commits: int

    @property
    def per_second(self) -> float:
        return self.threads / self.seconds


def folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def bench_durable_graph(threads: int, root: Path) -> Result:
    backend = local_backend(root)
    queue = backend.queue
    assert isinstance(queue, SqliteQueue)
    counter = DurableCommits()
    queue.db.trace(counter)
    app = email_graph.with_backend(backend)
    started = time.perf_counter()
    for i in range(threads):
        tid = f"tx-{i}"
        app.invoke({"user_prompt": f"pay supplier {i}"}, thread_id=tid)
        app.resume(tid, values={"approved": True}, as_node="human_review")
    elapsed = time.perf_counter() - started
    assert app.get_state(f"tx-{threads - 1}").values["outcome"] == "sent"
    backend.close()
    return Result("durable-graph (embedded)", threads, elapsed, folder_bytes(root), counter.durable)


class LgState(TypedDict, total=False):
    user_prompt: str
    recipient: str
    subject: str
    draft: str
    risk: str
    approved: bool | None
    outcome: str
    log: Annotated[list[str], operator.add]


def bench_langgraph(threads: int, root: Path, durability: Any) -> Result:
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph

    from examples.email_approval import fake_llm

    def draft_email(state: LgState) -> dict[str, Any]:
        reply = fake_llm({"model": "demo-llm", "prompt": state["user_prompt"]})
        risk = "high" if "wire" in reply["body"].lower() else "low"
        return {
            "subject": reply["subject"],
            "draft": reply["body"],
            "risk": risk,
            "log": [f"drafted ({risk} risk)"],
        }

    def human_review(state: LgState) -> dict[str, Any]:
        return {"log": ["reviewed"]}

    def send_email(state: LgState) -> dict[str, Any]:
        if not state.get("approved"):
            return {"outcome": "rejected"}
        folder = root / "sent"
        folder.mkdir(exist_ok=True)
        (folder / f"{len(state['draft'])}-{time.perf_counter_ns()}.txt").write_text(state["draft"])
        return {"outcome": "sent", "log": ["sent"]}

    builder = StateGraph(LgState)
    builder.add_node("draft_email", draft_email)
    builder.add_node("human_review", human_review)
    builder.add_node("send_email", send_email)
    builder.add_edge(START, "draft_email")
    builder.add_edge("draft_email", "human_review")
    builder.add_edge("human_review", "send_email")
    builder.add_edge("send_email", END)

    root.mkdir(parents=True, exist_ok=True)
    db = root / "langgraph.db"
    conn = sqlite3.connect(str(db), check_same_thread=False)
    commits = 0

    def trace(statement: str) -> None:
        nonlocal commits
        if statement.strip().upper().startswith("COMMIT"):
            commits += 1

    conn.set_trace_callback(trace)
    saver = SqliteSaver(conn)
    saver.setup()
    graph = builder.compile(checkpointer=saver, interrupt_before=["human_review"])
    started = time.perf_counter()
    for i in range(threads):
        config: Any = {"configurable": {"thread_id": f"tx-{i}"}}
        graph.invoke({"user_prompt": f"pay supplier {i}"}, config, durability=durability)
        graph.update_state(config, {"approved": True}, as_node="human_review")
        graph.invoke(None, config, durability=durability)
    elapsed = time.perf_counter() - started
    last = graph.get_state({"configurable": {"thread_id": f"tx-{threads - 1}"}})
    assert last.values["outcome"] == "sent"
    conn.close()
    return Result(
        f"LangGraph SqliteSaver ({durability})", threads, elapsed, folder_bytes(root), commits
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        base = Path(tmp)
        ours = bench_durable_graph(args.threads, base / "dg")
        results = [ours]
        try:
            results.append(bench_langgraph(args.threads, base / "lg-sync", "sync"))
            results.append(bench_langgraph(args.threads, base / "lg-async", "async"))
        except ImportError as exc:
            print(f"LangGraph not installed ({exc}); install with: pip install -e '.[bench]'")
    print(f"\nApproval flow (run → suspend → resume → complete), {args.threads} threads\n")
    header = f"{'engine':<36}{'threads/s':>11}{'bytes/thread':>14}{'commits/thread':>16}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.name:<36}{r.per_second:>11.1f}{r.bytes_on_disk / r.threads:>14.0f}"
            f"{r.commits / r.threads:>16.1f}"
        )
    for r in results[1:]:
        print(
            f"\ndurable-graph vs {r.name}: {ours.per_second / r.per_second:.2f}x throughput, "
            f"{ours.bytes_on_disk / r.bytes_on_disk:.2f}x bytes"
        )


if __name__ == "__main__":
    main()
