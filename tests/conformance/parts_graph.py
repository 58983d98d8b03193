"""The one graph shape of the tests of what a record holds besides its state (task arguments,
an interrupt payload, a resume value, io responses, an error message): `plan` fans out `Send`s
to `work`, whose results go (through any nodes `between`) to `ask`, which suspends with a
payload naming `mark`, then `explode` fails with `mark` in its error. Each test module gives its
own state, fan-out, `work` and name (`test_erasure_parts`, `test_encryption_parts`,
`tests/ledger/unsalted_parts`, whose graph wrote a fixture store: its version must not move)."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Annotated, Any

from pydantic import BaseModel, Field

from durable_graph import END, START, NodeContext, RetryPolicy, Send, StateGraph
from durable_graph.runtime import CompiledGraph

Node = Callable[..., dict[str, Any]]


class Case(BaseModel):
    """The state of most of them: what each `work` task adds up, and the answer to `ask`."""

    done: Annotated[list[int], operator.add] = Field(default_factory=list)
    answer: str = ""


def parts_graph(
    name: str,
    state: type[BaseModel],
    mark: str,
    fan_out: Callable[[Any], list[Send]],
    work: Node,
    between: Sequence[tuple[str, Node]] = (),
) -> CompiledGraph:
    """START → plan → `fan_out` (to `work`) → work → *between → ask → explode → END."""

    def plan(state: Any) -> dict[str, Any]:
        return {}

    def ask(state: Any, ctx: NodeContext) -> dict[str, Any]:
        answer = ctx.interrupt({"question": f"{mark} approve?"})
        return {"answer": "yes" if answer else "no"}

    def explode(state: Any) -> dict[str, Any]:
        raise ValueError(f"{mark} exploded")

    builder = StateGraph(state)
    builder.add_node("plan", plan)
    builder.add_node("work", work)
    for node, action in between:
        builder.add_node(node, action)
    builder.add_node("ask", ask)
    builder.add_node("explode", explode, retry=RetryPolicy(max_attempts=1))
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", fan_out)
    chain = ["work", *(node for node, _ in between), "ask", "explode", END]
    for source, target in pairwise(chain):
        builder.add_edge(source, target)
    return builder.compile(name=name)


__all__ = ["Case", "parts_graph"]
