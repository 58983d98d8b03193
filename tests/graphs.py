"""Graphs the tests run. Module-level so workers in other processes can import them by path."""

from __future__ import annotations

import operator
import os
import threading
import time
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field

from durable_graph import END, START, Command, NodeContext, RetryPolicy, Send, StateGraph

# Per-process side-effect counters (the tests that need cross-process counts use files).
CALLS: dict[str, int] = {}
_lock = threading.Lock()


def count(name: str) -> int:
    with _lock:
        CALLS[name] = CALLS.get(name, 0) + 1
        return CALLS[name]


# ---------------------------------------------------------------- fan-out / fan-in


class DocsState(BaseModel):
    documents: list[str] = Field(default_factory=list)
    summaries: Annotated[list[str], operator.add] = Field(default_factory=list)
    checks: Annotated[list[str], operator.add] = Field(default_factory=list)
    report: str = ""


def split(state: DocsState) -> dict[str, Any]:
    return {}


def fan_out(state: DocsState) -> list[Send]:
    return [Send("summarise", {"doc": d}) for d in state.documents]


def summarise(arg: dict[str, str], ctx: NodeContext) -> dict[str, Any]:
    count(f"summarise:{arg['doc']}")
    if arg["doc"] == "flaky" and ctx.attempt < 2:
        raise ConnectionError("temporary outage")
    if arg["doc"] == "broken" and os.environ.get("DG_TEST_FIX_BROKEN") != "1":
        raise RuntimeError("cannot summarise a broken document")
    return {"summaries": [f"summary of {arg['doc']}"]}


def lint(state: DocsState) -> dict[str, Any]:
    count("lint")
    return {"checks": ["linted"]}


def join(state: DocsState) -> dict[str, Any]:
    count("join")
    return {"report": " | ".join(sorted(state.summaries))}


docs_builder = StateGraph(DocsState)
docs_builder.add_node("split", split)
docs_builder.add_node(
    "summarise", summarise, retry=RetryPolicy(max_attempts=2, initial_interval=0.0)
)
docs_builder.add_node("lint", lint)
docs_builder.add_node("join", join)
docs_builder.add_edge(START, "split")
docs_builder.add_conditional_edges("split", fan_out)
docs_builder.add_edge("split", "lint")
docs_builder.add_edge("summarise", "join")
docs_builder.add_edge("lint", "join")
docs_builder.add_edge("join", END)
docs_graph = docs_builder.compile(name="tests.graphs:docs_graph")


# ---------------------------------------------------------------- dynamic interrupt + routing


class ReviewState(BaseModel):
    amount: int = 0
    decision: str = ""
    route_taken: str = ""


def assess(state: ReviewState, ctx: NodeContext) -> dict[str, Any]:
    if state.amount > 100:
        answer = ctx.interrupt({"question": f"approve {state.amount}?"})
        return {"decision": str(answer)}
    return {"decision": "auto"}


def route(state: ReviewState) -> str:
    return "big" if state.decision not in ("auto", "no") else "small"


def big(state: ReviewState) -> dict[str, Any]:
    return {"route_taken": "big"}


def small(state: ReviewState) -> dict[str, Any]:
    return {"route_taken": "small"}


review_builder = StateGraph(ReviewState)
review_builder.add_node("assess", assess)
review_builder.add_node("big", big)
review_builder.add_node("small", small)
review_builder.add_edge(START, "assess")
review_builder.add_conditional_edges("assess", route, {"big": "big", "small": "small"})
review_builder.add_edge("big", END)
review_builder.add_edge("small", END)
review_graph = review_builder.compile(name="tests.graphs:review_graph")


# ---------------------------------------------------------------- retries and failures


class FlakyState(BaseModel):
    attempts_seen: int = 0
    done: bool = False


def flaky(state: FlakyState, ctx: NodeContext) -> dict[str, Any]:
    n = count("flaky")
    if n < 3:
        raise TimeoutError(f"attempt {n} timed out")
    return {"attempts_seen": ctx.attempt, "done": True}


flaky_builder = StateGraph(FlakyState)
flaky_builder.add_node("flaky", flaky, retry=RetryPolicy(max_attempts=2, initial_interval=0.0))
flaky_builder.add_edge(START, "flaky")
flaky_builder.add_edge("flaky", END)
flaky_graph = flaky_builder.compile(name="tests.graphs:flaky_graph")


class BadState(BaseModel):
    out: str = ""


def returns_object(state: BadState) -> dict[str, Any]:
    return {"out": object()}


bad_builder = StateGraph(BadState)
bad_builder.add_node("bad", returns_object)
bad_builder.add_edge(START, "bad")
bad_builder.add_edge("bad", END)
bad_graph = bad_builder.compile(name="tests.graphs:bad_graph")


class ClassifyState(BaseModel):
    text: str = ""
    label: str = ""


def classify(state: ClassifyState) -> dict[str, Any]:
    """Always raises until the test "fixes" it with DG_TEST_FIX_CLASSIFY=1."""
    count("classify")
    if os.environ.get("DG_TEST_FIX_CLASSIFY") != "1":
        raise ValueError("boom")
    return {"label": "invoice" if "invoice" in state.text else "other"}


classify_builder = StateGraph(ClassifyState)
classify_builder.add_node(
    "classify",
    classify,
    retry=RetryPolicy(max_attempts=3, initial_interval=0.0, retry_on=(ValueError,)),
)
classify_builder.add_edge(START, "classify")
classify_builder.add_edge("classify", END)
classify_graph = classify_builder.compile(name="tests.graphs:classify_graph")


# ---------------------------------------------------------------- slow node, for crash tests


class SlowState(BaseModel):
    log: Annotated[list[str], operator.add] = Field(default_factory=list)


def _mark(folder: str, name: str) -> None:
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(f"{os.getpid()}\n")


def first(state: SlowState) -> dict[str, Any]:
    _mark(os.environ["DG_MARKS"], "first")
    return {"log": ["first"]}


def slow(state: SlowState, ctx: NodeContext) -> dict[str, Any]:
    _mark(os.environ["DG_MARKS"], "slow-started")
    time.sleep(float(os.environ.get("DG_SLOW_SECONDS", "3")))

    def effect() -> str:
        _mark(os.environ["DG_MARKS"], "slow-effect")
        return "done"

    ctx.step("effect", effect)
    return {"log": ["slow"]}


def last(state: SlowState) -> dict[str, Any]:
    _mark(os.environ["DG_MARKS"], "last")
    return {"log": ["last"]}


slow_builder = StateGraph(SlowState)
slow_builder.add_node("first", first)
slow_builder.add_node("slow", slow)
slow_builder.add_node("last", last)
slow_builder.add_edge(START, "first")
slow_builder.add_edge("first", "slow")
slow_builder.add_edge("slow", "last")
slow_builder.add_edge("last", END)
slow_graph = slow_builder.compile(name="tests.graphs:slow_graph")


# ---------------------------------------------------------------- interrupt_after


class AfterState(BaseModel):
    draft: str = ""
    edited: bool = False
    published: str = ""


def write(state: AfterState) -> dict[str, Any]:
    return {"draft": "first draft"}


def publish(state: AfterState) -> dict[str, Any]:
    return {"published": state.draft}


after_builder = StateGraph(AfterState)
after_builder.add_node("write", write)
after_builder.add_node("publish", publish)
after_builder.add_edge(START, "write")
after_builder.add_edge("write", "publish")
after_builder.add_edge("publish", END)
after_graph = after_builder.compile(interrupt_after=["write"], name="tests.graphs:after_graph")


# ---------------------------------------------------------------- two nodes sending to one


class SendersState(BaseModel):
    out: Annotated[list[str], operator.add] = Field(default_factory=list)


def sender_a(state: SendersState) -> dict[str, Any]:
    return {}


def sender_b(state: SendersState) -> dict[str, Any]:
    return {}


def collect_one(arg: str) -> dict[str, Any]:
    return {"out": [arg]}


senders_builder = StateGraph(SendersState)
senders_builder.add_node("a", sender_a)
senders_builder.add_node("b", sender_b)
senders_builder.add_node("w", collect_one)
senders_builder.add_edge(START, "a").add_edge(START, "b")
senders_builder.add_conditional_edges("a", lambda s: [Send("w", "from-a"), Send("w", "a2")])
senders_builder.add_conditional_edges("b", lambda s: [Send("w", "from-b")])
senders_builder.add_edge("w", END)
senders_graph = senders_builder.compile(name="tests.graphs:senders_graph")


# ---------------------------------------------------------------- two parallel tasks, one fails


class PairState(BaseModel):
    done: Annotated[list[str], operator.add] = Field(default_factory=list)
    fixed: bool = False


def steady(state: PairState) -> dict[str, Any]:
    count("steady")
    return {"done": ["steady"]}


def fragile(state: PairState) -> dict[str, Any]:
    if not state.fixed:
        raise RuntimeError("fragile is broken")
    return {"done": ["fragile"]}


pair_builder = StateGraph(PairState)
pair_builder.add_node("steady", steady)
pair_builder.add_node("fragile", fragile, retry=RetryPolicy(max_attempts=1))
pair_builder.add_edge(START, "steady").add_edge(START, "fragile")
pair_builder.add_edge("steady", END).add_edge("fragile", END)
pair_graph = pair_builder.compile(name="tests.graphs:pair_graph")


# ------------------------------------------------- a node routing by Command(goto=...) and Sends


class RouteState(BaseModel):
    items: list[str] = Field(default_factory=list)
    done: Annotated[list[str], operator.add] = Field(default_factory=list)


def dispatch(state: RouteState) -> Command:
    return Command(
        update={"done": ["dispatch"]}, goto=[Send("handle", {"item": i}) for i in state.items]
    )


def handle(arg: dict[str, str]) -> dict[str, Any]:
    return {"done": [f"handled {arg['item']}"]}


command_builder = StateGraph(RouteState).add_node("dispatch", dispatch).add_node("handle", handle)
command_builder.add_edge(START, "dispatch").add_edge("handle", END)
command_graph = command_builder.compile(name="tests.graphs:command_graph")
