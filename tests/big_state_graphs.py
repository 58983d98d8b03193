"""Graphs whose state grows large (`docs/record-format.md` §3, §12): a dict grown one key a step
through a dict reducer and through plain overwrite, interrupt payloads, resume values and io
responses of many small values, and a conversation of many megabytes. Used by the conformance
tests and `bench/big_state.py`."""

from __future__ import annotations

import operator
import os
import threading
from typing import Annotated, Any

from pydantic import BaseModel, Field

from durable_graph import END, START, NodeContext, Send, StateGraph, interrupt
from tests.loops import loop_graph


def merge_dicts(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A dict reducer other than `operator.add`: keys added or replaced."""
    return {**old, **new}


class DictState(BaseModel):
    facts: Annotated[dict[str, str], merge_dicts] = Field(default_factory=dict)
    index: dict[str, int] = Field(default_factory=dict)
    turns: int = 0
    limit: int = 10


def learn(state: DictState) -> dict[str, Any]:
    """One new fact (through the reducer) and one new index entry (the whole dict written back,
    extended by one key), plus one fact replaced: the dicts grow by about 250 bytes a step
    (random hex: they compress as text does, not as padding)."""
    turn = state.turns
    facts = {f"fact-{turn:06d}": f"fact number {turn}: " + os.urandom(100).hex()}
    if turn:
        facts["fact-000000"] = f"revised at turn {turn}"
    return {"facts": facts, "index": {**state.index, f"k{turn}": turn}, "turns": turn + 1}


dict_graph = loop_graph(
    DictState,
    "learn",
    learn,
    more=lambda state: state.turns < state.limit,
    name="tests.big_state_graphs:dict_graph",
)


def many_small(count: int, width: int, tag: str) -> list[str]:
    """`count` distinct strings of `width` characters: about count x width bytes of JSON made
    of values far under the offload threshold (what an LLM's tool results, a page of search
    hits or a table look like)."""
    return [f"{tag}-{i:06d}-".ljust(width, "y") for i in range(count)]


def lookup(request: dict[str, int]) -> list[str]:
    """What `ctx.record` calls: a search returning `count` small rows."""
    return many_small(request["count"], request["width"], "io")


class PartsState(BaseModel):
    count: int = 10_000
    width: int = 200
    answer_items: int = 0
    looked_up: int = 0


def ask(state: PartsState, ctx: NodeContext) -> dict[str, Any]:
    """An io response, then an interrupt payload, of `count` small strings each; the resume
    value it gets back is counted into the state."""
    found = ctx.record("lookup", lookup, {"count": state.count, "width": state.width})
    rows = many_small(state.count, state.width, "ask")
    answer = interrupt({"question": "approve these?", "rows": rows})
    return {"looked_up": len(found), "answer_items": len(answer["rows"])}


parts_builder = StateGraph(PartsState)
parts_builder.add_node("ask", ask)
parts_builder.add_edge(START, "ask")
parts_builder.add_edge("ask", END)
parts_graph = parts_builder.compile(name="tests.big_state_graphs:parts_graph")


class BigChat(BaseModel):
    messages: Annotated[list[str], operator.add] = Field(default_factory=list)
    documents: Annotated[list[str], operator.add] = Field(default_factory=list)
    turns: int = 0
    limit: int = 10
    message_bytes: int = 1024
    document_bytes: int = 0
    document_every: int = 0
    random_text: bool = False  # hex of random bytes (compresses about as text does), not padding


def _text(head: str, size: int, fill: str, random_text: bool) -> str:
    if random_text:
        return (head + os.urandom(size // 2).hex())[:size]
    return head.ljust(size, fill)


def talk(state: BigChat) -> dict[str, Any]:
    """One message of `message_bytes`, and every `document_every` turns one document of
    `document_bytes` appended to `documents` (a big single value: its own chunk)."""
    turn = state.turns
    out: dict[str, Any] = {
        "messages": [_text(f"turn {turn}: ", state.message_bytes, "m", state.random_text)],
        "turns": turn + 1,
    }
    if state.document_every and turn % state.document_every == 0:
        document = _text(f"document {turn}: ", state.document_bytes, "d", state.random_text)
        out["documents"] = [document]
    return out


big_chat_graph = loop_graph(
    BigChat,
    "talk",
    talk,
    more=lambda state: state.turns < state.limit,
    name="tests.big_state_graphs:big_chat_graph",
)


class FanOutParts(BaseModel):
    count: int = 10_000
    width: int = 200
    found: Annotated[list[str], operator.add] = Field(default_factory=list)
    args_seen: Annotated[list[int], operator.add] = Field(default_factory=list)


def spread(state: FanOutParts) -> list[Send]:
    """Two `Send`s: one whose argument is `count` small strings (about 2 MB of JSON), one small;
    both run as one parallel superstep, each completing through its `done#` row."""
    rows = many_small(state.count, state.width, "arg")
    return [
        Send("gather", {"tag": "big", "rows": rows}),
        Send("gather", {"tag": "small", "rows": []}),
    ]


# Set by a test to make two runs of the big task meet inside it (both past the check for an
# existing result row) before either records its result: a real race, forced.
RACE: list[threading.Barrier] = []


def gather(arg: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    """The big task records a 2 MB io response and writes 2 MB to the state (its `done#` row's
    writes and io); the small one writes one string."""
    if arg["tag"] != "big":
        return {"found": ["small"], "args_seen": [len(arg["rows"])]}
    for barrier in RACE:
        barrier.wait(timeout=60)
    count, width = len(arg["rows"]), len(arg["rows"][0])
    looked = ctx.record("lookup", lookup, {"count": count, "width": width})
    return {"found": many_small(count, width, "out"), "args_seen": [len(looked)]}


fanout_builder = StateGraph(FanOutParts)
fanout_builder.add_node("gather", gather)
fanout_builder.add_conditional_edges(START, spread, ["gather"])
fanout_builder.add_edge("gather", END)
fanout_parts_graph = fanout_builder.compile(name="tests.big_state_graphs:fanout_parts_graph")
