"""Map-reduce with `Send`: one task per subject, run in parallel, their results gathered by a
reducer, then the best one chosen, as in LangGraph's map-reduce guide.

Runs on durable-graph's engine: the `Send`s are tasks of one superstep, each committed on its
own, merged through the reducer when the last one finishes."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from durable_graph import END, START, Send, StateGraph


class Overall(TypedDict, total=False):
    topic: str
    subjects: list[str]
    jokes: Annotated[list[str], operator.add]
    best: str


def generate_subjects(state: Overall) -> dict[str, Any]:
    return {"subjects": [f"{state['topic']} {kind}" for kind in ("cats", "dogs", "owls")]}


def fan_out(state: Overall) -> list[Send]:
    return [Send("write_joke", {"subject": s}) for s in state["subjects"]]


class Subject(TypedDict):
    subject: str


def write_joke(state: Subject) -> dict[str, Any]:
    return {"jokes": [f"A joke about {state['subject']}"]}


def pick_best(state: Overall) -> dict[str, Any]:
    return {"best": max(state["jokes"], key=len)}


def build(backend: Any = None) -> Any:
    builder = StateGraph(Overall)
    builder.add_node("generate_subjects", generate_subjects)
    builder.add_node("write_joke", write_joke)
    builder.add_node("pick_best", pick_best)
    builder.add_edge(START, "generate_subjects")
    builder.add_conditional_edges("generate_subjects", fan_out, ["write_joke"])
    builder.add_edge("write_joke", "pick_best")
    builder.add_edge("pick_best", END)
    return builder.compile(checkpointer=backend)


def main(backend: Any = None) -> dict[str, Any]:
    graph = build(backend)
    result: dict[str, Any] = graph.invoke(
        {"topic": "ledger"}, {"configurable": {"thread_id": "map-reduce"}}
    )
    print(sorted(result["jokes"]), "->", result["best"])
    return result


if __name__ == "__main__":
    main()
