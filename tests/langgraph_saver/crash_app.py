"""A LangGraph app run in its own process by `test_durability.py`: two parallel tasks, `fast`
and `slow`, then `join`, through `ainvoke(..., durability="async")` (LangGraph's default mode,
where pending writes are saved in the background). With `DG_HANG` set, `slow` waits to be
killed. Each node appends its name to a marks file, so the test counts how often each ran.

    DG_MARKS=FILE python -m tests.langgraph_saver.crash_app HOME THREAD ours|sqlite
"""

from __future__ import annotations

import asyncio
import operator
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph

from durable_graph.langgraph_saver import DurableGraphSaver


class Log(TypedDict):
    log: Annotated[list[str], operator.add]


def _mark(name: str) -> None:
    with Path(os.environ["DG_MARKS"]).open("a", encoding="utf-8") as marks:
        marks.write(name + "\n")


def fast(state: Log) -> dict[str, Any]:
    _mark("fast")
    return {"log": ["fast"]}


def slow(state: Log) -> dict[str, Any]:
    if os.environ.get("DG_HANG"):
        _mark("slow-hanging")
        time.sleep(600)  # until the test kills the process
    _mark("slow")
    return {"log": ["slow"]}


def join(state: Log) -> dict[str, Any]:
    _mark("join")
    return {"log": ["join"]}


def app(checkpointer: BaseCheckpointSaver[Any]) -> Any:
    builder = StateGraph(Log)
    builder.add_node("fast", fast)
    builder.add_node("slow", slow)
    builder.add_node("join", join)
    builder.add_edge(START, "fast")
    builder.add_edge(START, "slow")
    builder.add_edge(["fast", "slow"], "join")
    builder.add_edge("join", END)
    return builder.compile(checkpointer=checkpointer)


async def run(home: Path, thread_id: str, saver_kind: str) -> list[str]:
    """Start the thread, or continue it if it has a checkpoint; the final log."""
    config: Any = {"configurable": {"thread_id": thread_id}}
    if saver_kind == "sqlite":  # LangGraph's own saver, for comparison
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        async with AsyncSqliteSaver.from_conn_string(str(home / "lg.sqlite")) as lg:
            return await _go(app(lg), config)
    with DurableGraphSaver.embedded(home) as saver:
        return await _go(app(saver), config)


async def _go(graph: Any, config: Any) -> list[str]:
    started = await graph.aget_state(config)
    given: dict[str, Any] | None = None if started.created_at else {"log": []}
    out = await graph.ainvoke(given, config, durability="async")
    return list(out["log"])


if __name__ == "__main__":
    print(" ".join(asyncio.run(run(Path(sys.argv[1]), sys.argv[2], sys.argv[3]))), flush=True)
