"""A small LangGraph app with what real apps do: an appending reducer, an interrupt resumed
with `Command`, several turns on one thread."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt


class Review(TypedDict):
    notes: Annotated[list[str], operator.add]
    drafts: int


def draft(state: Review) -> dict[str, Any]:
    return {"notes": [f"draft {state['drafts'] + 1}: " + "x" * 200], "drafts": state["drafts"] + 1}


def review(state: Review) -> dict[str, Any]:
    decision = interrupt({"question": "approve?", "drafts": state["drafts"]})
    return {"notes": [f"decision: {decision}"]}


def review_app(checkpointer: BaseCheckpointSaver[Any]) -> Any:
    builder = StateGraph(Review)
    builder.add_node("draft", draft)
    builder.add_node("review", review)
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "review")
    builder.add_edge("review", END)
    return builder.compile(checkpointer=checkpointer)


def run_turns(app: Any, thread_id: str, turns: int) -> list[dict[str, Any]]:
    """`turns` rounds of (new input -> interrupt -> resume); the outputs of every call."""
    config = {"configurable": {"thread_id": thread_id}}
    outputs = []
    for turn in range(turns):
        first = {"notes": [f"turn {turn}"], "drafts": 0} if turn == 0 else {"notes": ["again"]}
        outputs.append(app.invoke(first, config))
        outputs.append(app.invoke(Command(resume=f"ok {turn}"), config))
    return outputs
