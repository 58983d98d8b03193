"""The builder refuses malformed graphs at compile time, and versions what it compiles."""

from __future__ import annotations

import doctest

import pytest
from pydantic import BaseModel

import durable_graph.graph
from durable_graph import END, START, StateGraph


class S(BaseModel):
    n: int = 0


def inc(state: S) -> dict[str, int]:
    return {"n": state.n + 1}


def test_docstring_example_runs() -> None:
    assert doctest.testmod(durable_graph.graph).failed == 0


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda g: g.add_node("a", inc), "no entry point"),
        (lambda g: g.add_node("a", inc).add_edge(START, "b"), "unknown node"),
        (lambda g: g.add_node("a", inc).add_edge(START, "a").add_edge("x", "a"), "unknown node"),
        (
            lambda g: (
                g.add_node("a", inc)
                .add_edge(START, "a")
                .add_conditional_edges("a", lambda s: "z", {"z": "zz"})
            ),
            "unknown node 'zz'",
        ),
    ],
)
def test_malformed_graphs_are_refused(build: object, message: str) -> None:
    graph = StateGraph(S)
    build(graph)  # type: ignore[operator]
    with pytest.raises(ValueError, match=message):
        graph.compile()


def test_interrupt_must_name_a_node() -> None:
    graph = StateGraph(S).add_node("a", inc).add_edge(START, "a").add_edge("a", END)
    with pytest.raises(ValueError, match="interrupt names unknown node 'b'"):
        graph.compile(interrupt_before=["b"])


def test_reserved_and_duplicate_node_names() -> None:
    graph = StateGraph(S).add_node("a", inc)
    with pytest.raises(ValueError):
        graph.add_node("a", inc)
    with pytest.raises(ValueError):
        graph.add_node(START, inc)


def test_state_must_be_a_typeddict_a_dataclass_or_a_pydantic_model() -> None:
    with pytest.raises(TypeError, match="TypedDict, a dataclass or a pydantic BaseModel"):
        StateGraph(dict)


def test_version_changes_with_topology_interrupts_and_schema() -> None:
    def build(extra_edge: bool = False) -> StateGraph:
        graph = StateGraph(S).add_node("a", inc).add_node("b", inc)
        graph.add_edge(START, "a").add_edge("a", "b").add_edge("b", END)
        if extra_edge:
            graph.add_edge("a", END)
        return graph

    base = build().compile().version
    assert build().compile().version == base  # deterministic
    assert build(extra_edge=True).compile().version != base
    assert build().compile(interrupt_before=["b"]).version != base

    class T(BaseModel):
        n: int = 0
        m: str = ""

    other = StateGraph(T).add_node("a", inc).add_node("b", inc)
    other.add_edge(START, "a").add_edge("a", "b").add_edge("b", END)
    assert other.compile().version != base
