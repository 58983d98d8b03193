"""A graph kept 30 days, importable by path from a `retention run` in another process."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from durable_graph import END, START, StateGraph
from durable_graph.retention_policy import Retention


class Contact(BaseModel):
    email: str = ""
    greeting: str = ""


def greet(state: Contact) -> dict[str, Any]:
    return {"greeting": f"hello {state.email}"}


_builder = StateGraph(Contact)
_builder.add_node("greet", greet)
_builder.add_edge(START, "greet")
_builder.add_edge("greet", END)
graph = _builder.compile(name="tests.e2e.retention_graphs:graph", retention=Retention(days=30))
