"""Graphs for the ledger tests: a chat that grows by 1 KB a turn (delta-encoded storage, a
recorded LLM call, an offloaded attachment) and ends waiting for a human review."""

from __future__ import annotations

import operator
import random
from typing import Annotated

from pydantic import BaseModel, Field

from durable_graph import END, START, NodeContext, StateGraph


class Chat(BaseModel):
    messages: Annotated[list[str], operator.add] = Field(default_factory=list)
    turns: int = 0
    limit: int = 6
    attachment: str = ""
    approved: bool | None = None
    note: str = ""


def fake_llm(request: dict[str, int]) -> str:
    """Deterministic 1 KB reply per turn: what a recorded LLM call returns."""
    text = f"turn {request['turn']}: " + "lorem ipsum dolor sit amet " * 40
    return text[:1024]


def reply(state: Chat, ctx: NodeContext) -> dict[str, object]:
    text = ctx.record("llm", fake_llm, {"turn": state.turns})
    return {"messages": [text], "turns": state.turns + 1}


def route(state: Chat) -> str:
    return "review" if state.turns >= state.limit else "reply"


def review(state: Chat) -> dict[str, object]:
    return {"note": "reviewed" if state.approved else "rejected"}


def build(reply_fn: object = reply) -> StateGraph:
    builder = StateGraph(Chat)
    builder.add_node("reply", reply_fn)  # type: ignore[arg-type]
    builder.add_node("review", review)
    builder.add_edge(START, "reply")
    builder.add_conditional_edges("reply", route, ["reply", "review"])
    builder.add_edge("review", END)
    return builder


graph = build().compile(interrupt_before=["review"], name="tests.ledger.graphs:graph")


def unrecorded_reply(state: Chat) -> dict[str, object]:
    """Calls 'the outside world' without the context: nothing can be fed back on replay."""
    return {"messages": [f"noise {random.random()}"], "turns": state.turns + 1}


def changed_reply(state: Chat, ctx: NodeContext) -> dict[str, object]:
    """Same recorded call, different use of its answer: a code change since the run."""
    text = ctx.record("llm", fake_llm, {"turn": state.turns})
    return {"messages": [text.upper()], "turns": state.turns + 1}


# Same topology (so the same graph version) with other node code, for replay tests.
unrecorded = build(unrecorded_reply).compile(
    interrupt_before=["review"], name="tests.ledger.graphs:unrecorded"
)
changed = build(changed_reply).compile(
    interrupt_before=["review"], name="tests.ledger.graphs:changed"
)
