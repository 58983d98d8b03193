"""Storage growth: a chat thread appends a 1 KB message per step for 200 steps, on
durable-graph's embedded store and on LangGraph + SqliteSaver, in the same run.

Prints, side by side, the bytes each stores and the ratio to the raw data (200 x 1 KB), and
the time to read the newest and the oldest state from a cold reader (a new store object, as
another process would have). Two byte counts, both after `VACUUM`:

- stored: the sum of the stored row bytes (checkpoint bodies/blobs, plus thread records, CAS
  records and pending writes) plus payload files: what the store holds, as DynamoDB would bill it;
- on disk: the SQLite file (+ payload folder), including page slack and empty tables.

The budget (DESIGN.md §9) is `stored <= 2x raw`.

    .venv/bin/python bench/storage_growth.py [--steps 200] [--message-bytes 1024]
"""

from __future__ import annotations

import argparse
import operator
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypedDict

from pydantic import BaseModel, Field

from durable_graph import END, START, NodeContext, StateGraph
from durable_graph.backends.local import local_backend


@dataclass
class Result:
    name: str
    stored: int
    on_disk: int
    newest_ms: float
    oldest_ms: float


def messages(steps: int, size: int) -> list[str]:
    """Text-like messages (random words: compressible like chat, but not trivially)."""
    rng = random.Random(42)
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10)))
        for _ in range(3000)
    ]
    out = []
    for turn in range(steps):
        text = f"turn {turn}:"
        while len(text) < size:
            text += " " + rng.choice(words)
        out.append(text[:size])
    return out


def vacuumed_file(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")
    return db.stat().st_size


def folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def timed_ms(read: Callable[[], Any], repeats: int = 5) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        read()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


class Chat(BaseModel):
    messages: Annotated[list[str], operator.add] = Field(default_factory=list)
    turns: int = 0


def bench_durable_graph(texts: list[str], root: Path, *, recorded: bool = False) -> Result:
    steps = len(texts)

    def llm(request: dict[str, int]) -> str:
        return texts[request["turn"]]

    def chat(state: Chat, ctx: NodeContext) -> dict[str, object]:
        if recorded:  # the reply is also kept as evidence in the step's `io`
            return {
                "messages": [ctx.record("llm", llm, {"turn": state.turns})],
                "turns": state.turns + 1,
            }
        return {"messages": [texts[state.turns]], "turns": state.turns + 1}

    def route(state: Chat) -> str:
        return END if state.turns >= steps else "chat"

    builder = StateGraph(Chat)
    builder.add_node("chat", chat)
    builder.add_edge(START, "chat")
    builder.add_conditional_edges("chat", route)
    backend = local_backend(root)
    app = builder.compile(name="bench.storage_growth:chat").with_backend(backend)
    app.invoke({}, {"recursion_limit": steps + 1}, thread_id="chat-1")
    backend.close()

    def cold(step: int | None) -> Callable[[], Any]:
        def read() -> Any:
            fresh = app.with_backend(local_backend(root))
            try:
                state = fresh.get_state("chat-1", step=step)
                state.values  # noqa: B018  (a lazy view: read before the store closes)
            finally:
                fresh.backend.close()
            return state

        return read

    newest = cold(None)()
    assert newest.values["messages"] == texts and cold(0)().values["messages"] == []
    # The open/close of the store is part of the timing; measure it alone and subtract it.
    overhead = timed_ms(lambda: local_backend(root).close())
    newest_ms = max(0.0, timed_ms(cold(None)) - overhead)
    oldest_ms = max(0.0, timed_ms(cold(0)) - overhead)
    db = root / "state.db"
    with sqlite3.connect(db) as conn:
        rows = sum(
            conn.execute(
                f"SELECT COALESCE(SUM(LENGTH(CAST(body AS BLOB))), 0) FROM {t}"
            ).fetchone()[0]
            for t in ("checkpoints", "threads", "records")
        )
    payloads = folder_bytes(root / "payloads")
    return Result(
        "durable-graph, reply recorded" if recorded else "durable-graph (embedded)",
        rows + payloads,
        vacuumed_file(db) + payloads,
        newest_ms,
        oldest_ms,
    )


class LgChat(TypedDict, total=False):
    messages: Annotated[list[str], operator.add]
    turns: int


def bench_langgraph(texts: list[str], root: Path) -> Result:
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END as LG_END
    from langgraph.graph import START as LG_START
    from langgraph.graph import StateGraph as LgStateGraph

    steps = len(texts)

    def chat(state: LgChat) -> dict[str, Any]:
        turns = state.get("turns", 0)
        return {"messages": [texts[turns]], "turns": turns + 1}

    def route(state: LgChat) -> str:
        return LG_END if state.get("turns", 0) >= steps else "chat"

    builder = LgStateGraph(LgChat)
    builder.add_node("chat", chat)
    builder.add_edge(LG_START, "chat")
    builder.add_conditional_edges("chat", route)
    root.mkdir(parents=True, exist_ok=True)
    db = root / "langgraph.db"
    config: Any = {"configurable": {"thread_id": "chat-1"}, "recursion_limit": steps + 10}
    with sqlite3.connect(str(db), check_same_thread=False) as conn:
        saver = SqliteSaver(conn)
        saver.setup()
        graph = builder.compile(checkpointer=saver)
        graph.invoke({"messages": [], "turns": 0}, config, durability="sync")
        history = list(graph.get_state_history(config))
        oldest_config = history[-1].config

    def cold(target: Any) -> Callable[[], Any]:
        def read() -> Any:
            with sqlite3.connect(str(db), check_same_thread=False) as fresh:
                return builder.compile(checkpointer=SqliteSaver(fresh)).get_state(target)

        return read

    assert cold(config)().values["messages"] == texts
    assert cold(oldest_config)().values.get("messages", []) == []

    def overhead_read() -> None:
        with sqlite3.connect(str(db), check_same_thread=False) as fresh:
            builder.compile(checkpointer=SqliteSaver(fresh))

    overhead = timed_ms(overhead_read)
    newest_ms = max(0.0, timed_ms(cold(config)) - overhead)
    oldest_ms = max(0.0, timed_ms(cold(oldest_config)) - overhead)
    with sqlite3.connect(db) as conn:
        stored = conn.execute(
            "SELECT COALESCE(SUM(LENGTH(checkpoint) + LENGTH(metadata)), 0) FROM checkpoints"
        ).fetchone()[0]
        stored += conn.execute("SELECT COALESCE(SUM(LENGTH(value)), 0) FROM writes").fetchone()[0]
    return Result("LangGraph SqliteSaver (sync)", stored, vacuumed_file(db), newest_ms, oldest_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--message-bytes", type=int, default=1024)
    parser.add_argument(
        "--recorded",
        action="store_true",
        help="also run a variant whose node gets each reply through ctx.record (kept in io)",
    )
    args = parser.parse_args()
    texts = messages(args.steps, args.message_bytes)
    raw = sum(len(t.encode("utf-8")) for t in texts)
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        base = Path(tmp)
        results = [bench_durable_graph(texts, base / "dg")]
        if args.recorded:
            results.append(bench_durable_graph(texts, base / "dg-rec", recorded=True))
        try:
            results.append(bench_langgraph(texts, base / "lg"))
        except ImportError as exc:
            print(f"LangGraph not installed ({exc}); install with: pip install -e '.[bench]'")
    print(
        f"\nChat thread: {args.steps} steps appending {args.message_bytes} B each "
        f"(raw data {raw / 1024:.0f} KiB)\n"
    )
    header = (
        f"{'engine':<30}{'stored KiB':>11}{'x raw':>7}{'on disk KiB':>13}{'x raw':>7}"
        f"{'newest ms':>11}{'oldest ms':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.name:<30}{r.stored / 1024:>11.0f}{r.stored / raw:>7.2f}{r.on_disk / 1024:>13.0f}"
            f"{r.on_disk / raw:>7.2f}{r.newest_ms:>11.2f}{r.oldest_ms:>11.2f}"
        )
    ours = results[0]
    verdict = "within" if ours.stored <= 2 * raw else "OVER"
    print(f"\nbudget: stored <= 2x raw: durable-graph stores {ours.stored / raw:.2f}x ({verdict})")
    if results[-1].name.startswith("LangGraph"):
        them = results[-1]
        print(
            f"LangGraph stores {them.stored / ours.stored:.0f}x more than durable-graph "
            f"({them.on_disk / ours.on_disk:.0f}x on disk)"
        )


if __name__ == "__main__":
    main()
