"""A long run in one process keeps no past step alive: each record holds its whole state, so a
worker that kept every outcome (it did) grew by a state per step, O(steps x state) in all, and
the garbage collector walked all of it again and again: a step at turn 10,000 cost several
times a step at turn 10 (`bench/long_threads.py chat`)."""

from __future__ import annotations

import gc
import operator
import weakref
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field

from durable_graph import END, START, StateGraph
from durable_graph.backends.local import local_backend
from durable_graph.engine import Outcome


class Talk(BaseModel):
    messages: Annotated[list[str], operator.add] = Field(default_factory=list)
    turn: int = 0


def _turn(state: Talk) -> dict[str, Any]:
    return {"messages": [f"message {state.turn}"], "turn": state.turn + 1}


def _again(state: Talk) -> str:
    return END if state.turn >= 40 else "turn"


def test_a_long_run_keeps_no_past_records_or_states_alive(tmp_path: Path) -> None:
    """Given a 40-step run in one `invoke`, when it returns, then of the records it committed
    only the last couple are still alive (the store's per-thread cache of its head)."""
    builder = StateGraph(Talk)
    builder.add_node("turn", _turn)
    builder.add_edge(START, "turn")
    builder.add_conditional_edges("turn", _again, {"turn": "turn", END: END})
    backend = local_backend(tmp_path / "home")
    app = builder.compile(name="tests.long_run:talk").with_backend(backend)
    records: list[weakref.ref[Any]] = []

    def seen(outcome: Outcome) -> None:
        if outcome.checkpoint is not None:
            records.append(weakref.ref(outcome.checkpoint))

    out = app.invoke({}, {"recursion_limit": 100}, thread_id="t", on_outcome=seen)
    assert out["turn"] == 40 and len(records) == 40
    gc.collect()
    alive = [r for r in records if r() is not None]
    assert len(alive) <= 2, f"{len(alive)} of 40 records still alive"
    backend.close()
