"""A wide fan-out for the crash test: `split` sends one `work` task per document, each `work`
task performs one recorded side effect (`ctx.step`), `collect` fans the results back in.

Module-level so worker processes import it by path (`tests.e2e.fanout_graphs:fanout_graph`).

Environment:
  DG_FANOUT_EFFECTS       file each side effect appends one line to: "<doc> <pid>\\n"
  DG_FANOUT_EFFECT_SECONDS (optional) how long an effect takes: half of it before the line is
                          appended, half after (before its result is recorded), so a kill lands
                          inside effects often, on both sides of the append.
"""

from __future__ import annotations

import hashlib
import operator
import os
import time
from typing import Annotated, Any

from pydantic import BaseModel, Field

from durable_graph import END, START, NodeContext, Send, StateGraph

EFFECTS_ENV = "DG_FANOUT_EFFECTS"
SECONDS_ENV = "DG_FANOUT_EFFECT_SECONDS"


class FanoutState(BaseModel):
    documents: list[str] = Field(default_factory=list)
    results: Annotated[list[str], operator.add] = Field(default_factory=list)
    summary: dict[str, Any] = Field(default_factory=dict)


def fingerprint(doc: str) -> str:
    return hashlib.sha256(doc.encode()).hexdigest()[:12]


def split(state: FanoutState) -> dict[str, Any]:
    return {}


def fan_out(state: FanoutState) -> list[Send]:
    return [Send("work", {"doc": doc}) for doc in state.documents]


def append_line(doc: str) -> None:
    """One short O_APPEND write: atomic, so concurrent processes never interleave lines."""
    fd = os.open(os.environ[EFFECTS_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{doc} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


def work(arg: dict[str, str], ctx: NodeContext) -> dict[str, Any]:
    doc = arg["doc"]
    pause = float(os.environ.get(SECONDS_ENV, "0")) / 2

    def effect() -> str:
        time.sleep(pause)
        append_line(doc)
        time.sleep(pause)
        return f"{doc}:{fingerprint(doc)}"

    return {"results": [ctx.step("effect", effect)]}


def collect(state: FanoutState) -> dict[str, Any]:
    ordered = sorted(state.results)
    return {
        "summary": {
            "count": len(state.results),
            "distinct": len(set(state.results)),
            "sha256": hashlib.sha256("\n".join(ordered).encode()).hexdigest(),
        }
    }


builder = StateGraph(FanoutState)
builder.add_node("split", split)
builder.add_node("work", work)
builder.add_node("collect", collect)
builder.add_edge(START, "split")
builder.add_conditional_edges("split", fan_out)
builder.add_edge("work", "collect")
builder.add_edge("collect", END)
fanout_graph = builder.compile(name="tests.e2e.fanout_graphs:fanout_graph")
