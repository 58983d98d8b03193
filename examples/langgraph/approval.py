"""Approve or reject with `interrupt()` and `Command(resume=...)`: a drafted payment waits for a
person; the decision routes it to `execute` or `cancel`.

Runs on durable-graph's engine: the LangGraph program with its imports changed
(`from durable_graph import ...`); the payment waits in a suspended thread that holds no
compute, and the decision can come from another process (`durable-graph resume`)."""

from __future__ import annotations

from typing import Any, TypedDict

from durable_graph import END, START, Command, StateGraph, interrupt


class Payment(TypedDict, total=False):
    request: str
    amount: int
    outcome: str


def draft(state: Payment) -> dict[str, Any]:
    return {"amount": 120 * len(state["request"].split())}


def review(state: Payment) -> Command:
    decision = interrupt({"question": "approve this payment?", "amount": state["amount"]})
    return Command(goto="execute" if decision == "approve" else "cancel")


def execute(state: Payment) -> dict[str, Any]:
    return {"outcome": f"paid {state['amount']}"}


def cancel(state: Payment) -> dict[str, Any]:
    return {"outcome": "cancelled"}


def build(backend: Any = None) -> Any:
    builder = StateGraph(Payment)
    builder.add_node("draft", draft)
    builder.add_node("review", review)
    builder.add_node("execute", execute)
    builder.add_node("cancel", cancel)
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "review")
    builder.add_edge("execute", END)
    builder.add_edge("cancel", END)
    return builder.compile(checkpointer=backend)


def main(backend: Any = None) -> list[Any]:
    graph = build(backend)
    results = []
    for thread, decision in (("pay-1", "approve"), ("pay-2", "reject")):
        config = {"configurable": {"thread_id": thread}}
        waiting = graph.invoke({"request": "pay the supplier invoice"}, config)
        print(thread, "waits:", waiting["__interrupt__"][0].value)
        done = graph.invoke(Command(resume=decision), config)
        print(thread, decision, "->", done["outcome"])
        results.append(done)
    return results


if __name__ == "__main__":
    main()
