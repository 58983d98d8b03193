"""The graph that wrote `tests/fixtures/legacy_v1_store` (record format 1, with the earlier
`DeltaStore`), as `tests/fixtures/legacy_v1_generate.py` defines it: a 1 KB-per-turn chat."""

from __future__ import annotations

import operator
from typing import Annotated, Any

from pydantic import BaseModel, Field

from durable_graph import END, START, StateGraph


class Chat(BaseModel):
    messages: Annotated[list[dict[str, Any]], operator.add] = Field(default_factory=list)
    turns: int = 0
    limit: int = 40
    note: str = ""


def turn(s: Chat) -> dict[str, Any]:
    big = "x" * 9000 if s.turns == 5 else ""
    return {
        "messages": [{"role": "user", "text": f"turn {s.turns} " + "m" * 1000}],
        "turns": s.turns + 1,
        "note": big or s.note,
    }


def more(s: Chat) -> str:
    return "turn" if s.turns < s.limit else END


builder = StateGraph(Chat)
builder.add_node("turn", turn)
builder.add_edge(START, "turn")
builder.add_conditional_edges("turn", more)
chat = builder.compile(name="tests.ledger.legacy_v1:chat")
