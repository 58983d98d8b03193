"""Graphs for the AWS runtime tests, importable by path (the functions load graphs by name)."""

from __future__ import annotations

import operator
import os
import random
import string
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field

from durable_graph import END, START, NodeContext, StateGraph
from durable_graph.errors import TransientError
from durable_graph.retention_policy import Retention
from tests.loops import loop_graph

# ---------------------------------------------------------------- a -> b (side effect) -> c


class ChainState(BaseModel):
    n: int = 0
    log: Annotated[list[str], operator.add] = Field(default_factory=list)
    receipt: str = ""


def effects_file() -> Path:
    return Path(os.environ["DG_EFFECTS"]) / "charges.log"


def step_a(state: ChainState) -> dict[str, Any]:
    return {"n": state.n + 1, "log": ["a"]}


def step_b(state: ChainState, ctx: NodeContext) -> dict[str, Any]:
    def charge() -> str:
        path = effects_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            handle.write(ctx.idempotency_key + "\n")
        return f"charged:{ctx.idempotency_key[:8]}"

    receipt = ctx.step("charge", charge)
    return {"n": state.n + 1, "log": ["b"], "receipt": receipt}


def step_c(state: ChainState) -> dict[str, Any]:
    return {"n": state.n + 1, "log": ["c"]}


chain_builder = StateGraph(ChainState)
chain_builder.add_node("a", step_a)
chain_builder.add_node("b", step_b)
chain_builder.add_node("c", step_c)
chain_builder.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", END)
chain_graph = chain_builder.compile(name="tests.aws.graphs:chain_graph")


# ---------------------------------------------------------------- a node slower than its lease

# Called inside `slow` on its first run: the zombie test uses it to let the visibility timeout
# pass and another worker take the message, while this first run is still "running".
SLOW_HOOK: list[Callable[[], None]] = []
RUNS: list[int] = []


class SlowState(BaseModel):
    runs: Annotated[list[int], operator.add] = Field(default_factory=list)
    effect: str = ""


def slow(state: SlowState, ctx: NodeContext) -> dict[str, Any]:
    RUNS.append(len(RUNS) + 1)
    run = RUNS[-1]

    def effect() -> str:
        path = effects_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            handle.write(f"run {run}\n")
        return f"effect of run {run}"

    done = ctx.step("effect", effect)
    if SLOW_HOOK:
        SLOW_HOOK.pop()()
    return {"runs": [run], "effect": done}


def after_slow(state: SlowState) -> dict[str, Any]:
    return {}


slow_builder = StateGraph(SlowState)
slow_builder.add_node("slow", slow)
slow_builder.add_node("after_slow", after_slow)
slow_builder.add_edge(START, "slow").add_edge("slow", "after_slow").add_edge("after_slow", END)
slow_graph = slow_builder.compile(name="tests.aws.graphs:slow_graph")


# ---------------------------------------------------------------- failures


class PoisonState(BaseModel):
    tries: int = 0


def upstream(state: PoisonState) -> dict[str, Any]:
    raise TransientError("upstream service unavailable")


poison_builder = StateGraph(PoisonState)
poison_builder.add_node("upstream", upstream)
poison_builder.add_edge(START, "upstream").add_edge("upstream", END)
poison_graph = poison_builder.compile(name="tests.aws.graphs:poison_graph")


class BulkyState(BaseModel):
    items: list[str] = Field(default_factory=list)
    extra: Any = None


def bloat(state: BulkyState) -> dict[str, Any]:
    # 60,000 small strings: no single value is large enough to offload, the record is too big.
    return {"items": [f"item-{i:06d}" for i in range(60_000)]}


bulky_builder = StateGraph(BulkyState)
bulky_builder.add_node("bloat", bloat)
bulky_builder.add_edge(START, "bloat").add_edge("bloat", END)
bulky_graph = bulky_builder.compile(name="tests.aws.graphs:bulky_graph")


# ---------------------------------------------------------------- retention: a record kept 30 days


class RecordState(BaseModel):
    patient: str = ""
    notes: str = ""
    outcome: str = ""


def summarise(state: RecordState) -> dict[str, Any]:
    # Notes above the offload threshold: the value is a chunk object in the payload bucket.
    return {"notes": f"notes on {state.patient}: " + "x" * 20_000, "outcome": "filed"}


retained_builder = StateGraph(RecordState)
retained_builder.add_node("summarise", summarise)
retained_builder.add_edge(START, "summarise").add_edge("summarise", END)
retained_graph = retained_builder.compile(
    name="tests.aws.graphs:retained_graph", retention=Retention(days=30)
)


# ---------------------------------------------------------------- a long chat: about 1 KB a turn


class ChatState(BaseModel):
    messages: Annotated[list[str], operator.add] = Field(default_factory=list)
    turns: int = 0
    limit: int = 10


_VOCABULARY = [
    "".join(random.Random(n).choices(string.ascii_lowercase, k=2 + n % 8)) for n in range(3000)
]


def chat_text(turn: int, size: int = 1000) -> str:
    """Turn `turn`'s message: `size` characters of words from a 3,000-word vocabulary
    (compressible like chat, not trivially), the same at every call."""
    rng = random.Random(turn)
    out = f"turn {turn}:"
    while len(out) < size:
        out += " " + " ".join(rng.choices(_VOCABULARY, k=16))
    return out[:size]


def chat_turn(state: ChatState) -> dict[str, Any]:
    return {"messages": [chat_text(state.turns)], "turns": state.turns + 1}


chat_graph = loop_graph(
    ChatState,
    "turn",
    chat_turn,
    more=lambda state: state.turns < state.limit,
    name="tests.aws.graphs:chat_graph",
)
