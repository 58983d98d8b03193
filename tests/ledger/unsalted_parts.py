"""The graph that wrote `tests/fixtures/unsalted_parts_store`: a thread with every part a record
holds besides its state (task arguments, an interrupt payload, a resume value, io responses, an
error message), written by the release before salted parts (`salted_parts.py`), whose records
hash those parts as stored. `tests/ledger/test_salted_parts.py` reads and verifies it."""

from __future__ import annotations

import operator
from typing import Annotated, Any

from pydantic import BaseModel, Field

from durable_graph import END, START, NodeContext, RetryPolicy, Send, StateGraph

MARK = "JANE-ROE-4471"


class Case(BaseModel):
    done: Annotated[list[int], operator.add] = Field(default_factory=list)
    answer: str = ""


def plan(state: Case) -> dict[str, Any]:
    return {}


def fan_out(state: Case) -> list[Send]:
    return [Send("work", {"doc": f"{MARK} {n}"}) for n in ("a", "b")]


def work(arg: dict[str, str], ctx: NodeContext) -> dict[str, Any]:
    looked = ctx.record("lookup", lambda r: f"{MARK} looked up {r}", arg["doc"][-1])
    return {"done": [len(looked)]}


def ask(state: Case, ctx: NodeContext) -> dict[str, Any]:
    answer = ctx.interrupt({"question": f"{MARK} approve?"})
    return {"answer": "yes" if answer else "no"}


def explode(state: Case) -> dict[str, Any]:
    raise ValueError(f"{MARK} exploded")


def _graph() -> Any:
    builder = StateGraph(Case)
    builder.add_node("plan", plan)
    builder.add_node("work", work)
    builder.add_node("ask", ask)
    builder.add_node("explode", explode, retry=RetryPolicy(max_attempts=1))
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", fan_out)
    builder.add_edge("work", "ask")
    builder.add_edge("ask", "explode")
    builder.add_edge("explode", END)
    return builder.compile(name="tests.ledger.unsalted_parts:graph")


graph = _graph()
